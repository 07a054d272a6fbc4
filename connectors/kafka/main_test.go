package kafka

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testEnv is one test's broker and configuration. Against the embedded
// broker every test gets its own cluster; with KAFKA_BROKERS set the tests
// share the real cluster and every test uses its own topic prefix, group
// and transactional ids.
type testEnv struct {
	t        *testing.T
	brokers  []string
	embedded *Embedded // nil against a real broker
	cfg      Config
	cl       *kgo.Client
	adm      *kadm.Client
}

func realBrokers() []string {
	v := strings.TrimSpace(os.Getenv("KAFKA_BROKERS"))
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

var nonTopicChars = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

func uniqueName(t *testing.T) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := nonTopicChars.ReplaceAllString(t.Name(), "-")
	if len(name) > 60 {
		name = name[:60]
	}
	return strings.ToLower(name) + "-" + hex.EncodeToString(b[:])
}

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	e := &testEnv{t: t}
	if bs := realBrokers(); bs != nil {
		e.brokers = bs
	} else {
		emb, err := StartEmbedded(EmbeddedConfig{Addr: "127.0.0.1:0"})
		require.NoError(t, err)
		t.Cleanup(func() { _ = emb.Close() })
		e.embedded = emb
		e.brokers = []string{emb.Addr()}
	}
	id := uniqueName(t)
	cfg := DefaultConfig()
	cfg.Brokers = e.brokers
	cfg.TopicPrefix = "sgt." + id + "."
	cfg.Partitions = 3
	cfg.GroupID = "sgt-" + id
	cfg.TransactionalIDPrefix = "sgt-" + id + "-txn-"
	cfg.ClientID = "sgt"
	cfg.TransactionTimeout = 10 * time.Second
	require.NoError(t, cfg.Validate())
	e.cfg = cfg

	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...))
	require.NoError(t, err)
	e.cl = cl
	e.adm = kadm.NewClient(cl)
	t.Cleanup(func() {
		if e.embedded == nil {
			e.deleteTopics()
		}
		cl.Close()
	})
	return e
}

// deleteTopics removes this test's topics from a real cluster.
func (e *testEnv) deleteTopics() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	all, err := e.adm.ListTopics(ctx)
	if err != nil {
		return
	}
	var mine []string
	for _, n := range all.Names() {
		if strings.HasPrefix(n, e.cfg.TopicPrefix) {
			mine = append(mine, n)
		}
	}
	if len(mine) > 0 {
		_, _ = e.adm.DeleteTopics(ctx, mine...)
	}
}

func (e *testEnv) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	e.t.Cleanup(cancel)
	return ctx
}

func (e *testEnv) ensureTopics() {
	e.t.Helper()
	require.NoError(e.t, EnsureTopics(e.ctx(), e.adm, e.cfg))
}

// readAll consumes every partition of topic from the start until idle
// passes without a record, with the given isolation.
func (e *testEnv) readAll(topic string, committed bool, idle time.Duration) []*kgo.Record {
	e.t.Helper()
	opts := []kgo.Opt{
		kgo.SeedBrokers(e.brokers...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200 * time.Millisecond),
	}
	if committed {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	} else {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadUncommitted()))
	}
	cl, err := kgo.NewClient(opts...)
	require.NoError(e.t, err)
	defer cl.Close()
	var out []*kgo.Record
	for {
		ctx, cancel := context.WithTimeout(context.Background(), idle)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachError(func(t string, p int32, err error) {
			if ctx.Err() == nil {
				require.NoError(e.t, err, "%s/%d", t, p)
			}
		})
		n := 0
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r); n++ })
		if n == 0 {
			return out
		}
	}
}

// produceTxn produces recs in one transaction with a fresh transactional
// client and commits or aborts it.
func (e *testEnv) produceTxn(commit bool, recs ...*kgo.Record) {
	e.t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(e.brokers...),
		kgo.TransactionalID(uniqueName(e.t)),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)
	require.NoError(e.t, err)
	defer cl.Close()
	ctx := e.ctx()
	require.NoError(e.t, cl.BeginTransaction())
	require.NoError(e.t, cl.ProduceSync(ctx, recs...).FirstErr())
	require.NoError(e.t, cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)))
}

// produce produces recs without a transaction (partition set by the record).
func (e *testEnv) produce(recs ...*kgo.Record) {
	e.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	require.NoError(e.t, err)
	defer cl.Close()
	require.NoError(e.t, cl.ProduceSync(e.ctx(), recs...).FirstErr())
}

// errOf returns the error of a Publish call.
func errOf(_ Committed, err error) error { return err }
