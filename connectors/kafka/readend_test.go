package kafka

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestReadToEndWaitsForOpenTransaction(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	topic := e.cfg.TopicPrefix + "open-txn"
	_, err := e.adm.CreateTopic(ctx, 1, -1, nil, topic)
	require.NoError(t, err)
	e.produce(&kgo.Record{Topic: topic, Value: []byte("before")})

	txn, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.TransactionalID(uniqueName(t)), kgo.DefaultProduceTopic(topic))
	require.NoError(t, err)
	defer txn.Close()
	require.NoError(t, txn.BeginTransaction())
	require.NoError(t, txn.ProduceSync(ctx, &kgo.Record{Value: []byte("in-txn")}).FirstErr())

	committed := make(chan time.Time, 1)
	go func() {
		time.Sleep(500 * time.Millisecond)
		committed <- time.Now()
		_ = txn.EndTransaction(ctx, kgo.TryCommit)
	}()

	var got []string
	end, err := readPartitionToEnd(ctx, e.cl, topic, 0, -1, func(r *kgo.Record) error {
		got = append(got, string(r.Value))
		return nil
	})
	require.NoError(t, err)
	at := <-committed
	require.False(t, time.Now().Before(at), "returned before the transaction ended")
	require.Equal(t, []string{"before", "in-txn"}, got)
	require.Equal(t, int64(2), end)
}

func TestReadToEndSkipsAbortedAndControl(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	topic := e.cfg.TopicPrefix + "aborted"
	_, err := e.adm.CreateTopic(ctx, 1, -1, nil, topic)
	require.NoError(t, err)
	e.produceTxn(true, &kgo.Record{Topic: topic, Value: []byte("a")})
	e.produceTxn(false, &kgo.Record{Topic: topic, Value: []byte("x")}, &kgo.Record{Topic: topic, Value: []byte("y")})
	e.produceTxn(true, &kgo.Record{Topic: topic, Value: []byte("b")})
	e.produceTxn(false, &kgo.Record{Topic: topic, Value: []byte("z")})

	var got []string
	end, err := readPartitionToEnd(ctx, e.cl, topic, 0, -1, func(r *kgo.Record) error {
		got = append(got, string(r.Value))
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, got)
	// a+marker, x+y+marker, b+marker, z+marker. A real broker writes
	// markers after EndTransaction returns: z's may still be missing from
	// the high watermark read reads to.
	require.Contains(t, []int64{8, 9}, end)

	// Starting in the middle.
	got = nil
	_, err = readPartitionToEnd(ctx, e.cl, topic, 0, 2, func(r *kgo.Record) error {
		got = append(got, string(r.Value))
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, []string{"b"}, got)
}

func TestReadToEndCompactionGaps(t *testing.T) {
	e := newEnv(t)
	if e.embedded == nil {
		t.Skip("needs the embedded broker to compact on demand")
	}
	ctx := e.ctx()
	topic := "compacted"
	_, err := e.adm.CreateTopic(ctx, 1, -1, map[string]*string{
		"cleanup.policy":      kadm.StringPtr("compact"),
		"delete.retention.ms": kadm.StringPtr("0"),
	}, topic)
	require.NoError(t, err)
	// One batch per record; keys overwritten, a tombstone at the end.
	for i := range 20 {
		e.produce(&kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", i%3), Value: fmt.Appendf(nil, "v%d", i)})
	}
	e.produce(&kgo.Record{Topic: topic, Key: []byte("k0")})
	e.produce(&kgo.Record{Topic: topic, Key: []byte("k1"), Value: []byte("last")})
	e.embedded.Compact()

	var got []string
	end, err := readPartitionToEnd(ctx, e.cl, topic, 0, -1, func(r *kgo.Record) error {
		got = append(got, fmt.Sprintf("%s=%s@%d", r.Key, r.Value, r.Offset))
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, int64(22), end)
	require.Less(t, len(got), 22, "compaction removed records: %v", got)
	require.Equal(t, "k1=last@21", got[len(got)-1])
}

func TestReadToEndMissingTopic(t *testing.T) {
	e := newEnv(t)
	_, err := readPartitionToEnd(e.ctx(), e.cl, e.cfg.TopicPrefix+"missing", 0, -1, func(*kgo.Record) error { return nil })
	require.Error(t, err)
}
