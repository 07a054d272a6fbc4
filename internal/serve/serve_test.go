package serve

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/smartgroups/smartgroups/deploy"
	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/engine/rule"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/cockroachdb/pebble/v2/internal/invariants.(*CloseChecker).Close"))
}

type instance struct {
	ready  Ready
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, cfg Config) *instance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{cancel: cancel, done: make(chan error, 1)}
	readyc := make(chan Ready, 1)
	cfg.OnReady = func(r Ready) { readyc <- r }
	go func() { in.done <- Run(ctx, cfg) }()
	select {
	case in.ready = <-readyc:
	case err := <-in.done:
		t.Fatalf("serve exited before ready: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("serve not ready after 60s")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-in.done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return in
}

func testConfig(t *testing.T) Config {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.EmbeddedAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Kafka.Partitions = 2
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return cfg
}

func produce(t *testing.T, cl *kgo.Client, topic, key string, v any) {
	t.Helper()
	var b []byte
	switch x := v.(type) {
	case string:
		b = []byte(x)
	default:
		b, _ = json.Marshal(v)
	}
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Key: []byte(key), Value: b}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// TestWallClockTimerAndMetrics runs serve on its embedded broker with the
// wall clock: a member whose only live attendance leaves the one-hour
// window a few seconds from now is removed by the timer, with reason
// "time", without any further input; and /metrics exposes every metric the
// dashboard uses.
func TestWallClockTimerAndMetrics(t *testing.T) {
	cfg := testConfig(t)
	in := start(t, cfg)
	cl, err := kgo.NewClient(kgo.SeedBrokers(in.ready.Brokers...), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeTopics(cfg.Kafka.MembershipsTopic()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	p := cfg.Kafka.TopicPrefix
	produce(t, cl, p+"definitions", "acme/group/live", map[string]any{"kind": "group", "spot": "acme", "id": "live", "type": "smart",
		"name": "Live in the last hour", "rule": map[string]any{"activity": "attended_live", "when": map[string]any{"within_last": map[string]int{"hours": 1}}}})
	now := time.Now()
	produce(t, cl, p+"profiles", "acme/u1", map[string]any{"spot": "acme", "member": "u1", "ts": now.UnixMilli(), "profile": map[string]any{"status": "accepted"}})
	attended := now.Add(-time.Hour + 3*time.Second).UnixMilli()
	produce(t, cl, p+"activities", "acme/u1", map[string]any{"spot": "acme", "member": "u1", "ts": attended, "id": "a1",
		"type": "attended_live", "resource": map[string]string{"id": "live-1"}})
	produce(t, cl, p+"activities", "acme/u1", `{"spot":"acme","member":"u1","ts":"not a time","type":"attended_live"}`)

	var events []engine.Event
	deadline := time.Now().Add(60 * time.Second)
	for len(events) < 2 && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			var ev engine.Event
			if err := json.Unmarshal(r.Value, &ev); err != nil {
				t.Fatalf("membership record %q: %v", r.Value, err)
			}
			events = append(events, ev)
		})
	}
	if len(events) < 2 {
		t.Fatalf("want an add then a time-driven remove, got %+v", events)
	}
	if events[0].Op != engine.OpAdd || events[1].Op != engine.OpRemove || events[1].Reason != engine.ReasonTime || events[1].Seq != 2 {
		t.Fatalf("want add then remove(time) with seq 2, got %+v", events)
	}
	due := attended + time.Hour.Milliseconds() + 1
	removedAt, err := rule.ParseTime(events[1].TS)
	if err != nil {
		t.Fatal(err)
	}
	if removedAt < due {
		t.Fatalf("removed at %d, before the window closed at %d", removedAt, due)
	}
	t.Logf("time-driven removal took effect %d ms after the window closed", removedAt-due)

	body := get(t, "http://"+in.ready.HTTPAddr+"/metrics")
	names := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
			names[f[2]] = true
		}
	}
	for _, m := range deploy.DashboardMetrics {
		if !names[m] {
			t.Errorf("metric %s used by the dashboard is not exposed", m)
		}
	}
	for _, want := range []string{"go_goroutines", "process_resident_memory_bytes", "smartgroups_kafka_"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if !strings.Contains(body, `smartgroups_dead_letters_total{reason="invalid_field",topic="activities"} 1`) {
		t.Errorf("the invalid record is not counted as a dead letter:\n%s", grep(body, "dead_letters"))
	}
	if got := get(t, "http://"+in.ready.HTTPAddr+"/readyz"); !strings.Contains(got, "ready") {
		t.Errorf("/readyz = %q", got)
	}
	if got := get(t, "http://"+in.ready.HTTPAddr+"/debug/pprof/"); !strings.Contains(got, "goroutine") {
		t.Errorf("/debug/pprof/ does not list the profiles:\n%.300s", got)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url) //nolint:noctx // test
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return fmt.Sprint(out)
}
