package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/pflag"

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

// addLimitFlags binds the SPEC §4 limits of lim (record size and rule
// shape) to flags whose defaults are lim's values.
func addLimitFlags(f *pflag.FlagSet, lim *engine.Limits) {
	f.IntVar(&lim.MaxRecordBytes, "max-record-bytes", lim.MaxRecordBytes, "largest input record value in bytes; a larger record is dead-lettered (too_large) with its first 64 KiB, size and SHA-256")
	f.IntVar(&lim.MaxRuleDepth, "max-rule-depth", lim.MaxRuleDepth, "deepest nesting of a smart group's rule (deployment-wide: the same on every instance)")
	f.IntVar(&lim.MaxRuleNodes, "max-rule-nodes", lim.MaxRuleNodes, "most nodes of a smart group's rule (deployment-wide: the same on every instance)")
	f.IntVar(&lim.MaxValues, "max-values", lim.MaxValues, "most entries of a value list in a trigger (deployment-wide: the same on every instance)")
	f.IntVar(&lim.MaxTags, "max-tags", lim.MaxTags, "most tags of a member; a record giving more is dead-lettered")
	f.IntVar(&lim.HistoryPerMember, "history-per-member", lim.HistoryPerMember, "membership transitions kept per member, every group together, in the state store (0: none, and no since instants)")
}

// checkLimits reports every limit flag whose value is unusable: each must
// be positive, --max-record-bytes at most engine.MaxRecordBytesLimit.
func checkLimits(lim engine.Limits) error {
	var errs []error
	for _, c := range []struct {
		flag string
		v    int
	}{
		{"max-record-bytes", lim.MaxRecordBytes}, {"max-rule-depth", lim.MaxRuleDepth},
		{"max-rule-nodes", lim.MaxRuleNodes}, {"max-values", lim.MaxValues}, {"max-tags", lim.MaxTags},
	} {
		if c.v <= 0 {
			errs = append(errs, fmt.Errorf("--%s must be positive, not %d", c.flag, c.v))
		}
	}
	if lim.HistoryPerMember < 0 || lim.HistoryPerMember > engine.MaxHistoryPerMember {
		errs = append(errs, fmt.Errorf("--history-per-member must be from 0 to %d, not %d", engine.MaxHistoryPerMember, lim.HistoryPerMember))
	}
	if lim.MaxRecordBytes > engine.MaxRecordBytesLimit {
		errs = append(errs, fmt.Errorf("--max-record-bytes must be at most %d, not %d", engine.MaxRecordBytesLimit, lim.MaxRecordBytes))
	}
	return errors.Join(errs...)
}
