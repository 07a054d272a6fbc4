package kafka

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/smartgroups/smartgroups/engine"
)

const kill9DirEnv = "SMARTGROUPS_KILL9_DIR"

func kill9Config(addr string) Config {
	cfg := DefaultConfig()
	cfg.Brokers = []string{addr}
	cfg.Partitions = 2
	return cfg
}

// TestKill9Child is the process TestEmbeddedKill9 kills: an embedded broker
// with a data dir, one committed transaction and one left open.
func TestKill9Child(t *testing.T) {
	dir := os.Getenv(kill9DirEnv)
	if dir == "" {
		t.Skip("helper process of TestEmbeddedKill9")
	}
	emb, err := StartEmbedded(EmbeddedConfig{Addr: "127.0.0.1:0", DataDir: dir})
	require.NoError(t, err)
	ctx := context.Background()
	cfg := kill9Config(emb.Addr())
	cl, err := kgo.NewClient(kgo.SeedBrokers(emb.Addr()))
	require.NoError(t, err)
	require.NoError(t, EnsureTopics(ctx, kadm.NewClient(cl), cfg))
	pub, err := NewPublisher(cfg, "test-instance", nil)
	require.NoError(t, err)
	_, err = pub.Acquire(ctx, 0)
	require.NoError(t, err)
	require.NoError(t, errOf(pub.Publish(ctx, kill9Batch(1))))

	// Same producer, next batch: produced, flushed, never committed.
	pp := pub.producers[0]
	recs, err := pub.records(kill9Batch(2))
	require.NoError(t, err)
	require.NoError(t, pp.cl.BeginTransaction())
	require.NoError(t, pp.cl.ProduceSync(ctx, recs...).FirstErr())
	fmt.Println("READY")
	select {} // wait for SIGKILL
}

// kill9Batch is outbox entry id of the kill -9 test: u1 joins g and is
// granted live-1 (id 1), then leaves and loses it (id 2).
func kill9Batch(id uint64) Batch {
	if id == 1 {
		return Batch{Partition: 0, OutboxID: 1, Events: []engine.Event{event("g", "u1", engine.OpAdd, 1)},
			Access: []engine.AccessEvent{access("live-1", "u1", engine.OpGrant, 1, "g")}}
	}
	return Batch{Partition: 0, OutboxID: 2, Events: []engine.Event{event("g", "u1", engine.OpRemove, 2)},
		Access: []engine.AccessEvent{access("live-1", "u1", engine.OpRevoke, 2)}}
}

// access is an access event of spot acme.
func access(resource, member string, op engine.AccessOp, seq uint64, groups ...string) engine.AccessEvent {
	if groups == nil {
		groups = []string{}
	}
	return engine.AccessEvent{Spot: "acme", Resource: resource, Member: member, Op: op,
		TS: "2026-11-20T09:00:00Z", Groups: groups, Seq: seq}
}

// TestEmbeddedKill9 kills -9 a process running the embedded broker in the
// middle of a transaction, restarts the broker from its data dir and checks
// that the committed transaction survived and the open one is invisible.
func TestEmbeddedKill9(t *testing.T) {
	if realBrokers() != nil {
		t.Skip("embedded broker only")
	}
	if testing.Short() {
		t.Skip("spawns a process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9Child$", "-test.count=1")
	cmd.Env = append(os.Environ(), kill9DirEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "READY" {
				ready <- true
				break
			}
		}
		for sc.Scan() { // drain
		}
		close(ready)
	}()
	select {
	case ok := <-ready:
		require.True(t, ok, "child exited before READY")
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("child not ready")
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	for range ready { // wait for the reader goroutine
	}

	st := time.Now()
	emb := startEmbedded(t, EmbeddedConfig{DataDir: dir})
	t.Logf("restart took %v", time.Since(st))
	// The open transaction touched memberships, access and progress.
	require.Equal(t, 3, emb.RepairedTransactions())
	cfg := kill9Config(emb.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pub, err := NewPublisher(cfg, "test-instance", nil)
	require.NoError(t, err)
	defer pub.Close()
	progress, err := pub.ReadProgress(ctx)
	require.NoError(t, err)
	require.Equal(t, map[int32]uint64{0: 1}, progress)
	marker, err := pub.Acquire(ctx, 0)
	last := marker.OutboxID
	require.NoError(t, err)
	require.Equal(t, uint64(1), last)
	require.NoError(t, errOf(pub.Publish(ctx, kill9Batch(2))))

	e := &testEnv{t: t, brokers: cfg.Brokers, cfg: cfg}
	evs := decodeEvents(t, e.readAll(cfg.MembershipsTopic(), true, time.Second))
	require.Equal(t, []engine.Event{event("g", "u1", engine.OpAdd, 1), event("g", "u1", engine.OpRemove, 2)}, evs)
	// The access topic too: the grant once, the revoke once (the killed
	// transaction's copy is invisible to read_committed consumers).
	var acc []engine.AccessEvent
	for _, r := range e.readAll(cfg.AccessTopic(), true, time.Second) {
		var a engine.AccessEvent
		require.NoError(t, json.Unmarshal(r.Value, &a))
		require.Equal(t, a.Key(), string(r.Key))
		acc = append(acc, a)
	}
	require.Equal(t, []engine.AccessEvent{access("live-1", "u1", engine.OpGrant, 1, "g"), access("live-1", "u1", engine.OpRevoke, 2)}, acc)
}
