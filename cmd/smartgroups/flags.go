package main

import (
	"fmt"
	"strings"

	"github.com/smartgroups/smartgroups/engine"
)

// brokerList splits a comma-separated --brokers value, dropping blanks.
func brokerList(s string) []string {
	var out []string
	for b := range strings.SplitSeq(s, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// clockMode parses a --clock value: wall or event.
func clockMode(s string) (engine.ClockMode, error) {
	switch s {
	case "wall":
		return engine.ClockWall, nil
	case "event":
		return engine.ClockEvent, nil
	}
	return 0, fmt.Errorf("--clock must be wall or event, not %q", s)
}
