package table

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	segkafka "github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	sgkafka "github.com/smartgroups/smartgroups/connectors/kafka"
	"github.com/smartgroups/smartgroups/engine"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// broker returns the seed brokers and a config with a unique prefix: the
// embedded broker by default, KAFKA_BROKERS when set.
func broker(t *testing.T) sgkafka.Config {
	t.Helper()
	cfg := sgkafka.DefaultConfig()
	if v := strings.TrimSpace(os.Getenv("KAFKA_BROKERS")); v != "" {
		cfg.Brokers = strings.Split(v, ",")
	} else {
		emb, err := sgkafka.StartEmbedded(sgkafka.EmbeddedConfig{Addr: "127.0.0.1:0"})
		require.NoError(t, err)
		t.Cleanup(func() { _ = emb.Close() })
		cfg.Brokers = []string{emb.Addr()}
	}
	id := fmt.Sprintf("%s-%d", strings.ToLower(t.Name()), time.Now().UnixNano())
	cfg.TopicPrefix = "sgt." + id + "."
	cfg.Partitions = 3
	cfg.GroupID = "sgt-" + id
	cfg.TransactionalIDPrefix = "sgt-" + id + "-txn-"
	cfg.TransactionTimeout = 10 * time.Second
	require.NoError(t, cfg.Validate())

	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, sgkafka.EnsureTopics(ctx, kadm.NewClient(cl), cfg))
	return cfg
}

func sgEvent(group, member string, op engine.Op, seq uint64) engine.Event {
	return engine.Event{Spot: "acme", Group: group, Member: member, Op: op, TS: "2026-11-20T09:00:00Z",
		Reason: engine.ReasonRule, Seq: seq}
}

// rawTxn produces memberships records in one transaction of its own and
// commits or aborts it.
func rawTxn(t *testing.T, cfg sgkafka.Config, commit bool, evs ...engine.Event) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.TransactionalID(cfg.TransactionalIDPrefix+"raw"),
		kgo.DefaultProduceTopic(cfg.MembershipsTopic()))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, cl.BeginTransaction())
	for _, e := range evs {
		v, err := json.Marshal(e)
		require.NoError(t, err)
		require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Key: []byte(e.Key()), Value: v}).FirstErr())
	}
	require.NoError(t, cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)))
}

// follow runs Run in the background until the test ends.
func follow(t *testing.T, cfg sgkafka.Config, tb *Table) (changes func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var (
		mu sync.Mutex
		n  int
	)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, ReaderConfig{Brokers: cfg.Brokers, Topic: cfg.MembershipsTopic(), MaxWait: 100 * time.Millisecond},
			tb, func(Change) { mu.Lock(); n++; mu.Unlock() }, nil)
	}()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return func() int { mu.Lock(); defer mu.Unlock(); return n }
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		require.True(t, time.Now().Before(deadline), "timed out waiting for %s", what)
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTableFromPublisher publishes membership events with the smartgroups
// Publisher (franz-go transactions), including aborted attempts that are
// then republished, and checks the kafka-go table sees each event once.
func TestTableFromPublisher(t *testing.T) {
	cfg := broker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pub, err := sgkafka.NewPublisher(cfg, "downstream-test", nil)
	require.NoError(t, err)
	defer pub.Close()
	for p := range int32(3) {
		_, err := pub.Acquire(ctx, p)
		require.NoError(t, err)
	}

	tb := New()
	tb.Strict = true
	changes := follow(t, cfg, tb)

	// 30 members over 3 groups, published by 3 input partitions.
	seq := map[string]uint64{}
	var outbox [3]uint64
	publish := func(p int32, evs ...engine.Event) {
		outbox[p] += uint64(len(evs))
		require.NoError(t, errOf(pub.Publish(ctx, sgkafka.Batch{Partition: p, Events: evs, OutboxID: outbox[p]})))
	}
	next := func(group, member string, op engine.Op) engine.Event {
		k := "acme/" + group + "/" + member
		seq[k]++
		return sgEvent(group, member, op, seq[k])
	}
	total := 0
	for i := range 30 {
		member := fmt.Sprintf("u%02d", i)
		p := int32(i % 3)
		var evs []engine.Event
		for _, g := range []string{"g1", "g2", "g3"} {
			evs = append(evs, next(g, member, engine.OpAdd))
		}
		if i%5 == 0 { // leaves g2 again
			evs = append(evs, next("g2", member, engine.OpRemove))
		}
		// An attempt that aborts (as after a crash or a fence), then the
		// same events committed.
		if i%7 == 0 {
			rawTxn(t, cfg, false, evs...)
		}
		publish(p, evs...)
		total += len(evs)
	}
	waitFor(t, "all changes", func() bool { return changes() >= total })
	time.Sleep(300 * time.Millisecond) // nothing more may arrive
	require.Equal(t, total, changes())
	require.Empty(t, tb.Violations())

	members, keys, applied := tb.Stats()
	require.Equal(t, 90, keys)
	require.Equal(t, total, applied)
	require.Equal(t, 90-6, members)
	require.Len(t, tb.Members("acme", "g1"), 30)
	require.Len(t, tb.Members("acme", "g2"), 24)
	require.False(t, tb.IsMember("acme", "g2", "u05"))
	require.True(t, tb.IsMember("acme", "g3", "u05"))
	require.Equal(t, uint64(2), tb.Seq("acme/g2/u10"))
}

// TestTableReportsDuplicates: a duplicate that really is committed (here a
// second committed transaction with the same event) is reported.
func TestTableReportsDuplicates(t *testing.T) {
	cfg := broker(t)
	tb := New()
	changes := follow(t, cfg, tb)
	e1 := sgEvent("g1", "u1", engine.OpAdd, 1)
	rawTxn(t, cfg, true, e1)
	rawTxn(t, cfg, true, e1, sgEvent("g1", "u1", engine.OpRemove, 2))
	waitFor(t, "two changes and a violation", func() bool { return changes() == 2 && len(tb.Violations()) == 1 })
	v := tb.Violations()[0]
	require.Equal(t, Duplicate, v.Kind)
	require.Equal(t, "acme/g1/u1", v.Key)
	require.False(t, tb.IsMember("acme", "g1", "u1"))
}

// TestKafkaGoReaderShowsAborted documents why ReadCommitted exists:
// kafka-go's Reader with IsolationLevel ReadCommitted returns the records of
// aborted transactions and the transaction markers (kafka-go #1332).
func TestKafkaGoReaderShowsAborted(t *testing.T) {
	cfg := broker(t)
	rawTxn(t, cfg, true, sgEvent("g1", "u1", engine.OpAdd, 1))
	rawTxn(t, cfg, false, sgEvent("g1", "u1", engine.OpRemove, 2))
	rawTxn(t, cfg, true, sgEvent("g1", "u1", engine.OpRemove, 2))

	// Everything went to one partition (same key).
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var part int
	var n int
	err := ReadCommitted(ctx, ReaderConfig{Brokers: cfg.Brokers, Topic: cfg.MembershipsTopic(), MaxWait: 100 * time.Millisecond},
		func(m Message) error {
			part = m.Partition
			if n++; n == 2 {
				cancel()
			}
			return nil
		})
	require.NoError(t, err)
	require.Equal(t, 2, n, "ReadCommitted: the two committed events")

	r := segkafka.NewReader(segkafka.ReaderConfig{Brokers: cfg.Brokers, Topic: cfg.MembershipsTopic(), Partition: part,
		IsolationLevel: segkafka.ReadCommitted, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	tb := New()
	var control int
	for {
		rctx, rcancel := context.WithTimeout(context.Background(), time.Second)
		m, err := r.ReadMessage(rctx)
		rcancel()
		if err != nil {
			break
		}
		if len(m.Key) == 4 && m.Key[0] == 0 && m.Key[1] == 0 {
			control++ // a transaction marker delivered as a message
			continue
		}
		tb.Apply(Message{Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value})
	}
	require.Equal(t, 3, control, "kafka-go Reader returns the 3 transaction markers")
	require.Equal(t, []ViolationKind{Duplicate}, kinds(tb.Violations()),
		"kafka-go Reader returns the aborted remove: the committed one looks like a duplicate")
}

func TestReadCommittedErrors(t *testing.T) {
	require.Error(t, ReadCommitted(context.Background(), ReaderConfig{}, nil))
	cfg := broker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := ReadCommitted(ctx, ReaderConfig{Brokers: cfg.Brokers, Topic: cfg.TopicPrefix + "missing"}, func(Message) error { return nil })
	require.Error(t, err)

	// fn's error stops reading and is returned.
	rawTxn(t, cfg, true, sgEvent("g1", "u1", engine.OpAdd, 1))
	err = ReadCommitted(ctx, ReaderConfig{Brokers: cfg.Brokers, Topic: cfg.MembershipsTopic()}, func(Message) error {
		return fmt.Errorf("downstream full")
	})
	require.ErrorContains(t, err, "downstream full")
}

// errOf returns the error of a Publish call.
func errOf(_ sgkafka.Committed, err error) error { return err }
