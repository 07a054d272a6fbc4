package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
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

// TestLimitFlags checks that every limit flag of serve, demo and process
// defaults to SPEC §4, is set by its SMARTGROUPS_ variable and is refused
// when not positive, naming the flag.
func TestLimitFlags(t *testing.T) {
	want := map[string]string{"max-record-bytes": "1048576", "max-rule-depth": "32", "max-rule-nodes": "1000",
		"max-values": "1000", "max-tags": "1000", "max-request-bytes": "1048576"}
	root := newRootCmd()
	for _, name := range []string{"serve", "demo", "process"} {
		cmd, _, err := root.Find([]string{name})
		if err != nil {
			t.Fatal(err)
		}
		for flag, def := range want {
			f := cmd.Flags().Lookup(flag)
			if name == "process" && flag == "max-request-bytes" {
				if f != nil {
					t.Errorf("process has --%s but serves no HTTP", flag)
				}
				continue
			}
			if f == nil || f.DefValue != def {
				t.Errorf("%s --%s: %v, want default %s", name, flag, f, def)
			}
		}
	}

	for _, tc := range []struct {
		args    []string
		env     string
		wantErr string
	}{
		{[]string{"process", "--max-rule-depth", "0"}, "", "--max-rule-depth must be positive, not 0"},
		{[]string{"process"}, "SMARTGROUPS_MAX_TAGS=-1", "--max-tags must be positive, not -1"},
		{[]string{"process", "--max-record-bytes", "300000000"}, "", "--max-record-bytes must be at most 268435456"},
		{[]string{"serve", "--max-request-bytes", "0", "--data-dir", t.TempDir()}, "", "--max-request-bytes must be positive, not 0"},
		{[]string{"serve", "--data-dir", t.TempDir()}, "SMARTGROUPS_MAX_VALUES=0", "--max-values must be positive, not 0"},
	} {
		t.Run(strings.Join(tc.args, " ")+" "+tc.env, func(t *testing.T) {
			if tc.env != "" {
				k, v, _ := strings.Cut(tc.env, "=")
				t.Setenv(k, v)
			}
			root := newRootCmd()
			var out bytes.Buffer
			root.SetOut(&out)
			root.SetErr(&out)
			root.SetIn(strings.NewReader(""))
			root.SetArgs(tc.args)
			if err := root.Execute(); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// TestMaxRecordBytesFlagReachesProcess checks that SMARTGROUPS_MAX_RECORD_BYTES
// sets the record size limit process dead-letters by.
func TestMaxRecordBytesFlagReachesProcess(t *testing.T) {
	t.Setenv("SMARTGROUPS_MAX_RECORD_BYTES", "40")
	dead := filepath.Join(t.TempDir(), "dead.ndjson")
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetIn(strings.NewReader(`{"topic":"profiles","key":"acme/u1","value":{"spot":"acme","member":"u1","ts":1,"profile":{"first_name":"Ada"}}}` + "\n"))
	root.SetArgs([]string{"process", "--deadletter", dead})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(dead)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"code":"too_large"`) || !strings.Contains(string(b), "limit of 40 bytes") {
		t.Fatalf("dead letters: %s", b)
	}
}
