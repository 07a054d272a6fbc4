package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/smartgroups/smartgroups/engine"
)

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// problems returns the log lines at level WARN or ERROR.
func problems(log string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			out = append(out, l)
		}
	}
	return out
}

// runUntil runs serve with cfg until stop is closed or Run returns, and
// returns Run's error. It fails the test when neither happens within two
// minutes, with the log.
func runUntil(t *testing.T, cfg Config, stop <-chan struct{}, log *syncBuffer) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	select {
	case err := <-done:
		return err
	case <-stop:
	case <-time.After(2 * time.Minute):
		t.Fatalf("serve did not reach the expected state in two minutes; log:\n%s", log.String())
	}
	cancel()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Minute):
		t.Fatalf("serve still running a minute after the cancellation; log:\n%s", log.String())
		return nil
	}
}

// vipProfiles returns n profile records of distinct members tagged vip.
func vipProfiles(topic string, from, n int) []*kgo.Record {
	recs := make([]*kgo.Record, n)
	for i := range n {
		m := fmt.Sprintf("u%d", from+i)
		recs[i] = &kgo.Record{Topic: topic, Key: []byte("acme/" + m),
			Value: fmt.Appendf(nil, `{"spot":"acme","member":%q,"ts":"2026-01-01T00:00:00Z","profile":{"status":"accepted","tags":["vip"]}}`, m)}
	}
	return recs
}

const vipGroup = `{"kind":"group","spot":"acme","id":"vips","type":"smart","name":"VIPs","rule":{"field":"profile.tags","op":"has_any","value":["vip"]}}`

// readMemberships reads the memberships topic read_committed until it
// holds want events (or a minute passes) and returns the events.
func readMemberships(t *testing.T, brokers []string, topic string, want int) []engine.Event {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Error(err)
		return nil
	}
	defer cl.Close()
	var events []engine.Event
	deadline := time.Now().Add(time.Minute)
	for len(events) < want && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			var ev engine.Event
			if err := json.Unmarshal(r.Value, &ev); err != nil {
				t.Errorf("membership record %q: %v", r.Value, err)
			}
			events = append(events, ev)
		})
	}
	// Anything beyond want is a duplicate: give it a moment to show.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
		var ev engine.Event
		_ = json.Unmarshal(r.Value, &ev)
		events = append(events, ev)
	})
	return events
}

// checkAdds checks that events are exactly one add to group vips of each
// of the members u0..u(n-1).
func checkAdds(t *testing.T, events []engine.Event, n int) {
	t.Helper()
	seen := map[string]int{}
	for _, ev := range events {
		if ev.Op != engine.OpAdd || ev.Group != "vips" || ev.Seq != 1 {
			t.Errorf("unexpected event %+v", ev)
		}
		seen[ev.Member]++
	}
	for i := range n {
		if m := fmt.Sprintf("u%d", i); seen[m] != 1 {
			t.Errorf("member %s: %d add events, want 1", m, seen[m])
		}
	}
	if len(events) != n {
		t.Errorf("%d membership events, want %d", len(events), n)
	}
}

// TestShutdownMidStreamIsQuiet cancels serve while it processes and
// publishes a stream of records, batch after batch: the shutdown logs no
// warning or error and Run returns nil; a restart on the same data dir
// publishes the rest, and the memberships topic holds each add exactly
// once.
func TestShutdownMidStreamIsQuiet(t *testing.T) {
	const n = 8000
	cfg := testConfig(t)
	cfg.BatchSize = 200
	var logs syncBuffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))

	// Cancel right after a publication committed: the loop is then in the
	// middle of the next batch, whose publication starts after the
	// cancellation.
	stop := make(chan struct{})
	var published atomic.Int32
	cfg.OnEvents = func([]engine.Event) {
		if published.Add(1) == 5 {
			close(stop)
		}
	}
	ready := make(chan Ready, 1)
	cfg.OnReady = func(r Ready) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(r.Brokers...))
		if err != nil {
			t.Error(err)
			return
		}
		defer cl.Close()
		recs := append([]*kgo.Record{{Topic: cfg.Kafka.Topic(engine.KindDefinitions), Key: []byte("acme/group/vips"), Value: []byte(vipGroup)}},
			vipProfiles(cfg.Kafka.Topic(engine.KindProfiles), 0, n)...)
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Error(err)
		}
		ready <- r
	}
	if err := runUntil(t, cfg, stop, &logs); err != nil {
		t.Fatalf("serve returned %v after the cancellation, want nil; log:\n%s", err, logs.String())
	}
	if ps := problems(logs.String()); len(ps) > 0 {
		t.Errorf("the shutdown logged warnings or errors:\n%s", strings.Join(ps, "\n"))
	}
	if !strings.Contains(logs.String(), `msg="shut down"`) {
		t.Errorf("no shut-down line in the log:\n%s", logs.String())
	}
	t.Logf("first run published %d batches", published.Load())

	// The restart publishes the rest; then the output is checked.
	logs2 := &syncBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs2, nil))
	cfg.OnEvents = nil
	stop2 := make(chan struct{})
	var readied atomic.Bool
	cfg.OnReady = func(r Ready) {
		readied.Store(true)
		go func() {
			defer close(stop2)
			checkAdds(t, readMemberships(t, r.Brokers, cfg.Kafka.MembershipsTopic(), n), n)
		}()
	}
	<-ready
	err := runUntil(t, cfg, stop2, logs2)
	if readied.Load() {
		<-stop2 // the check is over
	}
	if err != nil {
		t.Fatalf("second run: %v; log:\n%s", err, logs2.String())
	}
	if ps := problems(logs2.String()); len(ps) > 0 {
		t.Errorf("the second run logged warnings or errors:\n%s", strings.Join(ps, "\n"))
	}
}
