package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/smartgroups/smartgroups/engine"
)

func event(group, member string, op engine.Op, seq uint64) engine.Event {
	return engine.Event{Spot: "acme", Group: group, Member: member, Op: op,
		TS: "2026-11-20T09:00:00Z", Reason: engine.ReasonRule, Seq: seq}
}

func newPublisher(t *testing.T, e *testEnv, m *Metrics) *Publisher {
	t.Helper()
	p, err := NewPublisher(e.cfg, "test-instance", m)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p
}

func decodeEvents(t *testing.T, recs []*kgo.Record) []engine.Event {
	t.Helper()
	var out []engine.Event
	for _, r := range recs {
		var ev engine.Event
		require.NoError(t, json.Unmarshal(r.Value, &ev))
		require.Equal(t, ev.Key(), string(r.Key))
		out = append(out, ev)
	}
	return out
}

func TestPublisherExactlyOnce(t *testing.T) {
	e := newEnv(t)
	e.ensureTopics()
	ctx := e.ctx()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	pub := newPublisher(t, e, m)

	marker, err := pub.Acquire(ctx, 1)
	last := marker.OutboxID
	require.NoError(t, err)
	require.Zero(t, last)

	b1 := Batch{Partition: 1, OutboxID: 3, Events: []engine.Event{
		event("g1", "u1", engine.OpAdd, 1),
		event("g1", "u2", engine.OpAdd, 1),
		event("g1", "u1", engine.OpRemove, 2),
	}, DeadLetters: []engine.DeadLetter{{
		Topic: e.cfg.Topic(engine.KindProfiles), Partition: 1, Offset: 42,
		Key: "acme/u9", Value: "{nope", Reason: "invalid JSON", Code: "invalid_json",
	}}}
	require.NoError(t, errOf(pub.Publish(ctx, b1)))
	// Republishing a batch at or below the published id is a no-op.
	require.NoError(t, errOf(pub.Publish(ctx, b1)))
	require.NoError(t, errOf(pub.Publish(ctx, Batch{Partition: 1, OutboxID: 2, Events: b1.Events})))
	b2 := Batch{Partition: 1, OutboxID: 4, Events: []engine.Event{event("g2", "u1", engine.OpAdd, 1)}}
	require.NoError(t, errOf(pub.Publish(ctx, b2)))
	n, ok := pub.Published(1)
	require.True(t, ok)
	require.Equal(t, uint64(4), n)

	evs := decodeEvents(t, e.readAll(e.cfg.MembershipsTopic(), true, time.Second))
	require.Len(t, evs, 4, "each event exactly once")
	perKey := map[string][]engine.Event{}
	for _, ev := range evs {
		perKey[ev.Key()] = append(perKey[ev.Key()], ev)
	}
	require.Equal(t, []engine.Event{b1.Events[0], b1.Events[2]}, perKey["acme/g1/u1"], "in order per key")
	require.Equal(t, []engine.Event{b1.Events[1]}, perKey["acme/g1/u2"])
	require.Equal(t, []engine.Event{b2.Events[0]}, perKey["acme/g2/u1"])

	dls := e.readAll(e.cfg.DeadLetterTopic(), true, 500*time.Millisecond)
	require.Len(t, dls, 1)
	require.Equal(t, "acme/u9", string(dls[0].Key))
	var dl engine.DeadLetter
	require.NoError(t, json.Unmarshal(dls[0].Value, &dl))
	require.Equal(t, b1.DeadLetters[0], dl)
	headers := map[string]string{}
	for _, h := range dls[0].Headers {
		headers[h.Key] = string(h.Value)
	}
	require.Equal(t, map[string]string{
		"topic": e.cfg.Topic(engine.KindProfiles), "partition": "1", "offset": "42",
		"reason": "invalid JSON", "code": "invalid_json",
	}, headers)

	progress, err := pub.ReadProgress(ctx)
	require.NoError(t, err)
	require.Equal(t, map[int32]uint64{1: 4}, progress)

	// The marker of partition 1 lives in progress partition 1.
	markers := e.readAll(e.cfg.ProgressTopic(), true, 500*time.Millisecond)
	require.Len(t, markers, 2)
	for _, r := range markers {
		require.Equal(t, int32(1), r.Partition)
		require.Equal(t, "1", string(r.Key))
	}

	require.Equal(t, 2.0, testutil.ToFloat64(m.Transactions.WithLabelValues("commit")))
	require.Equal(t, 0.0, testutil.ToFloat64(m.Transactions.WithLabelValues("abort")))
}

func TestPublisherAbortedTransactionInvisible(t *testing.T) {
	e := newEnv(t)
	e.ensureTopics()
	ctx := e.ctx()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	pub := newPublisher(t, e, m)

	_, err = pub.Acquire(ctx, 0)
	require.NoError(t, err)
	ok1 := Batch{Partition: 0, OutboxID: 1, Events: []engine.Event{event("g1", "u1", engine.OpAdd, 1)}}
	require.NoError(t, errOf(pub.Publish(ctx, ok1)))

	// A record larger than the producer's batch limit fails; the records
	// before and after it in the same transaction must not be committed.
	huge := event("g1", strings.Repeat("x", 2<<20), engine.OpAdd, 1)
	bad := Batch{Partition: 0, OutboxID: 4, Events: []engine.Event{
		event("g1", "u2", engine.OpAdd, 1), huge, event("g1", "u3", engine.OpAdd, 1),
	}}
	_, err = pub.Publish(ctx, bad)
	require.Error(t, err)
	require.True(t, errors.Is(err, kerr.MessageTooLarge), "%v", err)
	require.Equal(t, 1.0, testutil.ToFloat64(m.Transactions.WithLabelValues("abort")))

	// The partition must be acquired again; the aborted marker does not count.
	require.ErrorIs(t, errOf(pub.Publish(ctx, ok1)), ErrNotAcquired)
	progress, err := pub.ReadProgress(ctx)
	require.NoError(t, err)
	require.Equal(t, map[int32]uint64{0: 1}, progress)
	marker, err := pub.Acquire(ctx, 0)
	last := marker.OutboxID
	require.NoError(t, err)
	require.Equal(t, uint64(1), last)

	// Republish without the poison record.
	retry := Batch{Partition: 0, OutboxID: 4, Events: []engine.Event{bad.Events[0], bad.Events[2]}}
	require.NoError(t, errOf(pub.Publish(ctx, retry)))

	evs := decodeEvents(t, e.readAll(e.cfg.MembershipsTopic(), true, time.Second))
	keys := map[string]int{}
	for _, ev := range evs {
		keys[ev.Key()]++
	}
	require.Equal(t, map[string]int{"acme/g1/u1": 1, "acme/g1/u2": 1, "acme/g1/u3": 1}, keys)

	// The aborted transaction did write u2 and u3 (kgo fails the huge
	// record alone): read_uncommitted sees them, read_committed does not.
	uncommitted := e.readAll(e.cfg.MembershipsTopic(), false, time.Second)
	require.Len(t, uncommitted, 5)

	progress, err = pub.ReadProgress(ctx)
	require.NoError(t, err)
	require.Equal(t, map[int32]uint64{0: 4}, progress)
}

func TestPublisherFencing(t *testing.T) {
	e := newEnv(t)
	e.ensureTopics()
	ctx := e.ctx()
	a := newPublisher(t, e, nil)
	b := newPublisher(t, e, nil)

	_, err := a.Acquire(ctx, 2)
	require.NoError(t, err)
	require.NoError(t, errOf(a.Publish(ctx, Batch{Partition: 2, OutboxID: 5, Events: []engine.Event{event("g", "u1", engine.OpAdd, 1)}})))

	// b takes partition 2 over: it sees a's progress and fences a.
	marker, err := b.Acquire(ctx, 2)
	last := marker.OutboxID
	require.NoError(t, err)
	require.Equal(t, uint64(5), last)

	_, err = a.Publish(ctx, Batch{Partition: 2, OutboxID: 6, Events: []engine.Event{event("g", "u1", engine.OpRemove, 2)}})
	require.Error(t, err)
	require.True(t, errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) ||
		errors.Is(err, kerr.InvalidProducerIDMapping), "fenced: %v", err)

	require.NoError(t, errOf(b.Publish(ctx, Batch{Partition: 2, OutboxID: 6, Events: []engine.Event{event("g", "u1", engine.OpRemove, 2)}})))
	evs := decodeEvents(t, e.readAll(e.cfg.MembershipsTopic(), true, time.Second))
	require.Len(t, evs, 2)
	require.Equal(t, uint64(1), evs[0].Seq)
	require.Equal(t, uint64(2), evs[1].Seq)
}

func TestReadProgressLastCommittedMarker(t *testing.T) {
	e := newEnv(t)
	e.ensureTopics()
	ctx := e.ctx()
	pub := newPublisher(t, e, nil)

	empty, err := pub.ReadProgress(ctx)
	require.NoError(t, err)
	require.Empty(t, empty)

	for p := range int32(3) {
		_, err := pub.Acquire(ctx, p)
		require.NoError(t, err)
	}
	for i := uint64(1); i <= 5; i++ {
		for p := range int32(3) {
			if p == 2 && i > 2 {
				continue
			}
			ev := event("g", fmt.Sprintf("u%d-%d", p, i), engine.OpAdd, 1)
			require.NoError(t, errOf(pub.Publish(ctx, Batch{Partition: p, OutboxID: i * 10, Events: []engine.Event{ev}})))
		}
	}
	// An aborted marker written by hand after the last commit of partition 0.
	v, err := json.Marshal(ProgressMarker{Partition: 0, OutboxID: 999})
	require.NoError(t, err)
	e.produceTxn(false, &kgo.Record{Topic: e.cfg.ProgressTopic(), Partition: 0, Key: []byte("0"), Value: v})

	progress, err := pub.ReadProgress(ctx)
	require.NoError(t, err)
	require.Equal(t, map[int32]uint64{0: 50, 1: 50, 2: 20}, progress)

	// A fresh publisher (a restarted instance) reads the same.
	pub2 := newPublisher(t, e, nil)
	progress, err = pub2.ReadProgress(ctx)
	require.NoError(t, err)
	require.Equal(t, map[int32]uint64{0: 50, 1: 50, 2: 20}, progress)
	marker, err := pub2.Acquire(ctx, 2)
	last := marker.OutboxID
	require.NoError(t, err)
	require.Equal(t, uint64(20), last)
}

func TestPublisherErrors(t *testing.T) {
	e := newEnv(t)
	e.ensureTopics()
	ctx := e.ctx()
	pub, err := NewPublisher(e.cfg, "test-instance", nil)
	require.NoError(t, err)

	require.ErrorIs(t, errOf(pub.Publish(ctx, Batch{Partition: 0, OutboxID: 1})), ErrNotAcquired)
	_, err = pub.Acquire(ctx, -5)
	require.Error(t, err)
	_, err = pub.Acquire(ctx, 0)
	require.NoError(t, err)
	pub.Release(0)
	require.ErrorIs(t, errOf(pub.Publish(ctx, Batch{Partition: 0, OutboxID: 1})), ErrNotAcquired)
	pub.Close()
	pub.Close()
	_, err = pub.Acquire(ctx, 0)
	require.ErrorIs(t, err, ErrPublisherClosed)
	require.ErrorIs(t, errOf(pub.Publish(ctx, Batch{Partition: 0, OutboxID: 1})), ErrPublisherClosed)
	_, err = pub.ReadProgress(ctx)
	require.ErrorIs(t, err, ErrPublisherClosed)

	bad := e.cfg
	bad.Brokers = nil
	_, err = NewPublisher(bad, "test-instance", nil)
	require.Error(t, err)
}

func TestPublisherDefinitionsPartition(t *testing.T) {
	e := newEnv(t)
	e.ensureTopics()
	ctx := e.ctx()
	pub := newPublisher(t, e, nil)
	require.Equal(t, e.cfg.TransactionalIDPrefix+"definitions", e.cfg.TransactionalID(engine.DefPartition))

	for _, p := range []int32{engine.DefPartition, 0} {
		marker, err := pub.Acquire(ctx, p)
		last := marker.OutboxID
		require.NoError(t, err)
		require.Zero(t, last)
	}
	dl := engine.DeadLetter{Topic: e.cfg.Topic(engine.KindDefinitions), Partition: 0, Offset: 7,
		Key: "acme/group/g1", Value: `{"kind":"group"}`, Reason: "rule: unknown field", Code: "invalid_rule"}
	require.NoError(t, errOf(pub.Publish(ctx, Batch{Partition: engine.DefPartition, OutboxID: 2, DeadLetters: []engine.DeadLetter{dl}})))
	require.NoError(t, errOf(pub.Publish(ctx, Batch{Partition: 0, OutboxID: 9, Events: []engine.Event{event("g", "u", engine.OpAdd, 1)}})))

	progress, err := pub.ReadProgress(ctx)
	require.NoError(t, err)
	require.Equal(t, map[int32]uint64{engine.DefPartition: 2, 0: 9}, progress)

	// Both markers share progress partition 0 and stay apart.
	pub2 := newPublisher(t, e, nil)
	marker, err := pub2.Acquire(ctx, engine.DefPartition)
	last := marker.OutboxID
	require.NoError(t, err)
	require.Equal(t, uint64(2), last)
	marker, err = pub2.Acquire(ctx, 0)
	last = marker.OutboxID
	require.NoError(t, err)
	require.Equal(t, uint64(9), last)

	_, err = pub2.Acquire(ctx, -2)
	require.Error(t, err)
}

// TestPublisherTakeoverAbortsZombie: an instance died in the middle of a
// transaction (records and marker produced, never ended). The next owner's
// Acquire fences it, the open transaction is aborted, the zombie cannot
// commit any more, and republishing yields every event exactly once.
func TestPublisherTakeoverAbortsZombie(t *testing.T) {
	e := newEnv(t)
	e.ensureTopics()
	ctx := e.ctx()

	first := newPublisher(t, e, nil)
	_, err := first.Acquire(ctx, 1)
	require.NoError(t, err)
	committed := []engine.Event{event("g", "u1", engine.OpAdd, 1)}
	require.NoError(t, errOf(first.Publish(ctx, Batch{Partition: 1, OutboxID: 1, Events: committed})))
	first.Close()

	// The zombie: same transactional id, a transaction left open.
	zombie, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...),
		kgo.TransactionalID(e.cfg.TransactionalID(1)),
		kgo.RecordPartitioner(outputPartitioner{progress: e.cfg.ProgressTopic()}))
	require.NoError(t, err)
	defer zombie.Close()
	pending := Batch{Partition: 1, OutboxID: 3, Events: []engine.Event{
		event("g", "u1", engine.OpRemove, 2), event("g", "u2", engine.OpAdd, 1),
	}}
	recs, err := first.records(pending)
	require.NoError(t, err)
	require.NoError(t, zombie.BeginTransaction())
	require.NoError(t, zombie.ProduceSync(ctx, recs...).FirstErr())

	next := newPublisher(t, e, nil)
	marker, err := next.Acquire(ctx, 1)
	last := marker.OutboxID
	require.NoError(t, err)
	require.Equal(t, uint64(1), last, "the open transaction does not count")
	require.Error(t, zombie.EndTransaction(ctx, kgo.TryCommit), "the zombie is fenced")

	require.NoError(t, errOf(next.Publish(ctx, pending)))
	evs := decodeEvents(t, e.readAll(e.cfg.MembershipsTopic(), true, time.Second))
	require.ElementsMatch(t, append(committed, pending.Events...), evs)
}

func TestPublisherProgressSurvivesBrokerRestart(t *testing.T) {
	if realBrokers() != nil {
		t.Skip("restarts the embedded broker")
	}
	dir := t.TempDir()
	emb, err := StartEmbedded(EmbeddedConfig{Addr: "127.0.0.1:0", DataDir: dir})
	require.NoError(t, err)
	addr := emb.Addr()
	cfg := DefaultConfig()
	cfg.Brokers = []string{addr}
	cfg.Partitions = 2
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	require.NoError(t, err)
	require.NoError(t, EnsureTopics(ctx, kadm.NewClient(cl), cfg))
	cl.Close()
	pub, err := NewPublisher(cfg, "test-instance", nil)
	require.NoError(t, err)
	_, err = pub.Acquire(ctx, 1)
	require.NoError(t, err)
	require.NoError(t, errOf(pub.Publish(ctx, Batch{Partition: 1, OutboxID: 5, Events: []engine.Event{event("g", "u", engine.OpAdd, 1)}})))
	pub.Close()
	require.NoError(t, emb.Close())

	// Same address and data dir, as serve does after a restart.
	emb2, err := StartEmbedded(EmbeddedConfig{Addr: addr, DataDir: dir})
	require.NoError(t, err)
	defer emb2.Close()
	require.Zero(t, emb2.RepairedTransactions(), "clean shutdown: nothing to repair")
	pub2, err := NewPublisher(cfg, "test-instance", nil)
	require.NoError(t, err)
	defer pub2.Close()
	progress, err := pub2.ReadProgress(ctx)
	require.NoError(t, err)
	require.Equal(t, map[int32]uint64{1: 5}, progress)
	marker, err := pub2.Acquire(ctx, 1)
	last := marker.OutboxID
	require.NoError(t, err)
	require.Equal(t, uint64(5), last)
	require.NoError(t, errOf(pub2.Publish(ctx, Batch{Partition: 1, OutboxID: 6, Events: []engine.Event{event("g", "u", engine.OpRemove, 2)}})))
}

// TestDeadLetterRecordTruncated checks the dead-letter record of a record
// over the size limit: its value's JSON has the truncated value, size and
// sha256, and the size and sha256 headers repeat them.
func TestDeadLetterRecordTruncated(t *testing.T) {
	d := engine.DeadLetter{Topic: "smartgroups.profiles", Partition: 2, Offset: 7, Key: "acme/u1",
		Value: strings.Repeat("x", engine.TruncatedValueBytes), Reason: "record value is 2097152 bytes, more than the limit",
		Code: engine.CodeTooLarge, Size: 2 << 20, SHA256: strings.Repeat("ab", 32)}
	r := DeadLetterRecord("smartgroups.deadletter", d)
	var got engine.DeadLetter
	require.NoError(t, json.Unmarshal(r.Value, &got))
	require.Equal(t, d, got)
	headers := map[string]string{}
	for _, h := range r.Headers {
		headers[h.Key] = string(h.Value)
	}
	require.Equal(t, "too_large", headers[HeaderCode])
	require.Equal(t, "2097152", headers[HeaderSize])
	require.Equal(t, d.SHA256, headers[HeaderSHA256])
	require.Len(t, r.Headers, 7)
}
