package serve

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/smartgroups/smartgroups/engine"
)

// diskFull fails every write to a file with ENOSPC, like a full disk.
var diskFull = errorfs.InjectorFunc(func(op errorfs.Op) error {
	switch op.Kind {
	case errorfs.OpFileWrite, errorfs.OpFileWriteAt, errorfs.OpFilePreallocate:
		return &os.PathError{Op: "write", Path: op.Path, Err: syscall.ENOSPC}
	}
	return nil
})

// readyzOnError is a slog handler that, when an ERROR record is logged,
// asks /readyz first and keeps the status: what a load balancer sees while
// serve reports the error.
type readyzOnError struct {
	slog.Handler
	addr   *atomic.Pointer[string]
	status *atomic.Int32
}

func (h readyzOnError) Handle(ctx context.Context, r slog.Record) error {
	if a := h.addr.Load(); r.Level >= slog.LevelError && a != nil {
		if resp, err := http.Get("http://" + *a + "/readyz"); err == nil { //nolint:noctx // test
			_ = resp.Body.Close()
			h.status.Store(int32(resp.StatusCode))
		}
	}
	return h.Handler.Handle(ctx, r)
}

// TestStateDiskFull fills the state store's disk while serve processes
// input: serve answers /readyz with 503, logs one error naming the data
// dir and the cause, and stops with an error. Once the disk has room
// again, a restart publishes the rest: the memberships topic holds each
// add exactly once.
func TestStateDiskFull(t *testing.T) {
	const before, after = 300, 300
	cfg := testConfig(t)
	fault := &errorfs.Toggle{Injector: diskFull}
	cfg.StateFS = errorfs.Wrap(vfs.Default, fault)
	// Without the membership history's keys: with them, the state written
	// before the disk fills crosses Pebble's first memtable (256 KiB), and
	// the next write rotates the WAL while the disk is full, where Pebble
	// panics (it cannot close the old WAL) instead of failing the commit.
	// That crash is a restart like a SIGKILL, not the clean stop checked
	// here.
	cfg.Limits.HistoryPerMember = 0
	var logs syncBuffer
	var addr atomic.Pointer[string]
	var status atomic.Int32
	cfg.Logger = slog.New(readyzOnError{Handler: slog.NewTextHandler(&logs, nil), addr: &addr, status: &status})
	profiles := cfg.Kafka.Topic(engine.KindProfiles)

	var brokersP atomic.Pointer[[]string]
	cfg.OnReady = func(r Ready) {
		addr.Store(&r.HTTPAddr)
		brokersP.Store(&r.Brokers)
		cl, err := kgo.NewClient(kgo.SeedBrokers(r.Brokers...))
		if err != nil {
			t.Error(err)
			return
		}
		defer cl.Close()
		recs := append([]*kgo.Record{{Topic: cfg.Kafka.Topic(engine.KindDefinitions), Key: []byte("acme/group/vips"), Value: []byte(vipGroup)}},
			vipProfiles(profiles, 0, before)...)
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Error(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()

	// Once the first records are published, the disk fills up and more
	// input comes.
	deadline := time.Now().Add(time.Minute)
	var brokers []string
	for brokers == nil || len(readCommitted(t, brokers, cfg.Kafka.MembershipsTopic())) < before {
		if b := brokersP.Load(); b != nil {
			brokers = *b
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first records were not published in a minute; log:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	fault.On()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(context.Background(), vipProfiles(profiles, before, after)...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()

	var runErr error
	select {
	case runErr = <-done:
	case <-time.After(time.Minute):
		t.Fatalf("serve still running a minute after the disk filled up; log:\n%s", logs.String())
	}
	if !errors.Is(runErr, syscall.ENOSPC) || !strings.Contains(runErr.Error(), cfg.DataDir) {
		t.Errorf("serve returned %v, want an error naming the data dir %s and wrapping ENOSPC", runErr, cfg.DataDir)
	}
	if got := status.Load(); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz answered %d while serve reported the failure, want 503", got)
	}
	var errorLines []string
	for _, l := range problems(logs.String()) {
		if strings.Contains(l, "level=ERROR") {
			errorLines = append(errorLines, l)
		}
	}
	if len(errorLines) != 1 || !strings.Contains(errorLines[0], "data_dir="+cfg.DataDir) || !strings.Contains(errorLines[0], "no space left on device") {
		t.Errorf("want one error line naming the data dir and the cause, got:\n%s", strings.Join(errorLines, "\n"))
	}
	t.Logf("the log of the failed run:\n%s", logs.String())

	// The disk has room again: the restart publishes what is missing.
	fault.Off()
	cfg.StateFS = nil
	logs2 := &syncBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs2, nil))
	stop := make(chan struct{})
	var readied atomic.Bool
	cfg.OnReady = func(r Ready) {
		readied.Store(true)
		go func() {
			defer close(stop)
			checkAdds(t, readMemberships(t, r.Brokers, cfg.Kafka.MembershipsTopic(), before+after), before+after)
		}()
	}
	err = runUntil(t, cfg, stop, logs2)
	if readied.Load() {
		<-stop
	}
	if err != nil {
		t.Fatalf("restart: %v; log:\n%s", err, logs2.String())
	}
}

// readCommitted returns the records of topic visible read_committed now.
func readCommitted(t *testing.T, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r); n++ })
		if n == 0 {
			return out
		}
	}
}
