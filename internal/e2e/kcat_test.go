package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smartgroups/smartgroups/engine"
)

// TestKcat runs scripts/kcat-demo.sh against serve: records produced by
// kcat (librdkafka, murmur2_random partitioner) land in the partitions the
// engine expects, and the membership events the script reads back with
// kcat are the expected ones, exactly once.
func TestKcat(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Skip("kcat is not installed (Debian package kcat)")
	}
	e := newEnv(t)
	s := e.newServe("a")
	s.start()
	s.waitReady(time.Minute)
	e.waitFor(2*time.Minute, "serve to own the partitions", func() (bool, string) {
		return len(s.owned()) == numPartitions, fmtSet(s.owned())
	})

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(moduleRoot, "scripts", "kcat-demo.sh"), strings.Join(e.brokers, ","), e.cfg.TopicPrefix)
	cmd.Env = append(os.Environ(), "KCAT_DEMO_SPOT=kc", "KCAT_DEMO_TIMEOUT=120")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat-demo.sh: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	t.Logf("kcat-demo.sh printed:\n%s", stdout.String())

	// The script's output: "<key> <event>" lines.
	printed := map[string]engine.Event{}
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		key, value, ok := strings.Cut(line, " ")
		if !ok {
			t.Fatalf("unexpected line %q", line)
		}
		var ev engine.Event
		if err := json.Unmarshal([]byte(value), &ev); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if ev.Key() != key {
			t.Errorf("line %q: key and event differ", line)
		}
		if _, dup := printed[key]; dup {
			t.Errorf("key %s printed twice", key)
		}
		printed[key] = ev
	}
	for _, m := range []string{"u1", "u2"} {
		ev, ok := printed["kc/engaged/"+m]
		if !ok || ev.Op != engine.OpAdd || ev.Seq != 1 || ev.Reason == "" {
			t.Errorf("kcat-demo.sh printed %+v for kc/engaged/%s, want an add with seq 1", ev, m)
		}
	}
	if len(printed) != 2 {
		t.Errorf("kcat-demo.sh printed %d events, want 2", len(printed))
	}

	// kcat's murmur2_random put member records where the engine expects
	// them, and the topic holds the two adds exactly once.
	rctx := e.ctx(time.Minute)
	for _, topic := range []string{e.cfg.Topic(engine.KindProfiles), e.cfg.Topic(engine.KindActivities)} {
		recs, err := e.readTopic(rctx, topic, true, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if want := partitionOf(string(r.Key)); r.Partition != want {
				t.Errorf("%s: kcat put key %s in partition %d, the engine expects %d", topic, r.Key, r.Partition, want)
			}
		}
	}
	events, err := e.readMemberships(rctx)
	if err != nil {
		t.Fatal(err)
	}
	h := checkHistory(events)
	if len(h.problems) > 0 {
		t.Errorf("memberships: %v", h.problems)
	}
	if d := diffSets(h.final, map[string]bool{"kc/engaged/u1": true, "kc/engaged/u2": true}, h); d != "" || h.events != 2 {
		t.Errorf("memberships topic: %s\n%s", h, d)
	}
}
