package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

func TestCheckEnv(t *testing.T) {
	cases := []struct {
		name    string
		environ []string
		want    []string // substrings of the error; none: no error
	}{
		{"nothing set", nil, nil},
		{"other variables", []string{"PATH=/bin", "KAFKA_BROKERS=k:9092", "XSMARTGROUPS_BROKER=x"}, nil},
		{"a flag of the command", []string{"SMARTGROUPS_BROKERS=k:9092", "SMARTGROUPS_API_TOKEN=t"}, nil},
		{"a flag of another command", []string{"SMARTGROUPS_MEMBERS=10", "SMARTGROUPS_NOW=2026-01-01T00:00:00Z"}, nil},
		{"dashes are underscores", []string{"SMARTGROUPS_TLS_SERVER_NAME=k", "SMARTGROUPS_STATE_CACHE_BYTES=1"}, nil},
		{"brokers misspelt", []string{"SMARTGROUPS_BROKER=kafka:9092"},
			[]string{"SMARTGROUPS_BROKER names no flag", "did you mean SMARTGROUPS_BROKERS (--brokers)?"}},
		{"underscore missing", []string{"SMARTGROUPS_APITOKEN=t"}, []string{"SMARTGROUPS_APITOKEN", "SMARTGROUPS_API_TOKEN (--api-token)"}},
		{"dash kept", []string{"SMARTGROUPS_DATA-DIR=/d"}, []string{"SMARTGROUPS_DATA-DIR", "SMARTGROUPS_DATA_DIR (--data-dir)"}},
		{"lower case", []string{"SMARTGROUPS_clock=event"}, []string{"SMARTGROUPS_clock", "SMARTGROUPS_CLOCK (--clock)"}},
		{"empty value", []string{"SMARTGROUPS_PARTITION="}, []string{"SMARTGROUPS_PARTITIONS (--partitions)"}},
		{"help is no setting", []string{"SMARTGROUPS_HELP=1"}, []string{"SMARTGROUPS_HELP names no flag"}},
		{"every unknown one", []string{"SMARTGROUPS_TOPIC_PREFX=a.", "SMARTGROUPS_BROKERS=k:9092", "SMARTGROUPS_GROUPID=g"},
			[]string{"SMARTGROUPS_TOPIC_PREFIX (--topic-prefix)", "SMARTGROUPS_GROUP_ID (--group-id)"}},
	}
	root := newRootCmd()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := checkEnv(root, tc.environ)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("checkEnv(%q) = %v, want nil", tc.environ, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("checkEnv(%q) = nil, want an error", tc.environ)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("checkEnv(%q) = %q, want it to contain %q", tc.environ, err, w)
				}
			}
		})
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"abc", "", 3}, {"", "abc", 3}, {"abc", "abc", 0},
		{"BROKER", "BROKERS", 1}, {"kitten", "sitting", 3}, {"flaw", "lawn", 2},
	} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestMisspeltBrokersStopsServe: with SMARTGROUPS_BROKER (for BROKERS) set,
// serve fails at once, before starting the embedded broker that an empty
// --brokers would otherwise start (its data directory stays empty).
func TestMisspeltBrokersStopsServe(t *testing.T) {
	dataDir := t.TempDir()
	t.Setenv("SMARTGROUPS_BROKER", "kafka:9092")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"serve", "--data-dir", dataDir, "--embedded-broker", "127.0.0.1:0", "--http", "127.0.0.1:0", "--log-level", "error"})
	start := time.Now()
	err := root.ExecuteContext(ctx)
	if err == nil || !strings.Contains(err.Error(), "did you mean SMARTGROUPS_BROKERS (--brokers)?") {
		t.Fatalf("serve with SMARTGROUPS_BROKER set: err = %v, want the unknown variable named", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("serve took %v to refuse", d)
	}
	entries, rerr := os.ReadDir(dataDir)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if len(entries) != 0 {
		t.Errorf("serve wrote %d entries to its data dir: it started before refusing", len(entries))
	}
}
