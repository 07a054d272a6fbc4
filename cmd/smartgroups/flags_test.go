package main

import (
	"reflect"
	"testing"

	"github.com/smartgroups/smartgroups/engine"
)

func TestBrokerList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{" , ,", nil},
		{"kafka:9092", []string{"kafka:9092"}},
		{" a:1, b:2 ,,c:3 ", []string{"a:1", "b:2", "c:3"}},
	} {
		if got := brokerList(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("brokerList(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestClockMode(t *testing.T) {
	for in, want := range map[string]engine.ClockMode{"wall": engine.ClockWall, "event": engine.ClockEvent} {
		if got, err := clockMode(in); err != nil || got != want {
			t.Errorf("clockMode(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "Wall", "fixed"} {
		if _, err := clockMode(in); err == nil || err.Error() != `--clock must be wall or event, not "`+in+`"` {
			t.Errorf("clockMode(%q): %v", in, err)
		}
	}
}
