package replay

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/smartgroups/smartgroups/connectors/kafka"
	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/engine/rule"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testEnv is a broker (KAFKA_BROKERS, or an embedded one) with the topics
// of a deployment of its own.
type testEnv struct {
	cfg  kafka.Config
	cl   *kgo.Client
	adm  *kadm.Client
	base time.Time
}

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	cfg := kafka.DefaultConfig()
	if v := strings.TrimSpace(os.Getenv("KAFKA_BROKERS")); v != "" {
		cfg.Brokers = strings.Split(v, ",")
	} else {
		emb, err := kafka.StartEmbedded(kafka.EmbeddedConfig{Addr: "127.0.0.1:0"})
		require.NoError(t, err)
		t.Cleanup(func() { _ = emb.Close() })
		cfg.Brokers = []string{emb.Addr()}
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	id := strings.ToLower(t.Name()) + "-" + hex.EncodeToString(b[:])
	cfg.TopicPrefix = "replay-test." + id + "."
	cfg.OwnersTopic = cfg.TopicPrefix + "owners"
	cfg.Partitions = 2
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	require.NoError(t, err)
	e := &testEnv{cfg: cfg, cl: cl, adm: kadm.NewClient(cl), base: time.Now().Add(-time.Hour).Truncate(time.Second)}
	t.Cleanup(func() {
		if len(os.Getenv("KAFKA_BROKERS")) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if all, err := e.adm.ListTopics(ctx); err == nil {
				var mine []string
				for _, n := range all.Names() {
					if strings.HasPrefix(n, cfg.TopicPrefix) {
						mine = append(mine, n)
					}
				}
				_, _ = e.adm.DeleteTopics(ctx, mine...)
			}
		}
		cl.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, kafka.EnsureTopics(ctx, e.adm, cfg))
	return e
}

// at is the record time of step s (seconds after base), and ts its RFC
// 3339 text.
func (e *testEnv) at(s int) time.Time { return e.base.Add(time.Duration(s) * time.Second) }
func (e *testEnv) ts(s int) string    { return e.at(s).UTC().Format(time.RFC3339) }

// put produces one record at step s to a partition of a kind's topic.
func (e *testEnv) put(t *testing.T, kind engine.Kind, part int32, s int, key, value string) {
	t.Helper()
	r := &kgo.Record{Topic: e.cfg.Topic(kind), Partition: part, Key: []byte(key), Timestamp: e.at(s)}
	if value != "" {
		r.Value = []byte(value)
	}
	require.NoError(t, e.cl.ProduceSync(context.Background(), r).FirstErr())
}

// TestMergeOrder: across partitions and topics the earliest record
// timestamp comes first (definitions first on a tie); within a partition
// the offset order stays, even when timestamps go backwards.
func TestMergeOrder(t *testing.T) {
	e := newEnv(t)
	e.put(t, engine.KindProfiles, 0, 3, "s/a", "{}")
	e.put(t, engine.KindProfiles, 0, 1, "s/b", "{}") // older than its predecessor
	e.put(t, engine.KindProfiles, 1, 2, "s/c", "{}")
	e.put(t, engine.KindActivities, 1, 2, "s/d", "{}")
	e.put(t, engine.KindDefinitions, 0, 2, "s/group/g", "{}")
	e.put(t, engine.KindProperties, 0, 0, "s/e", "{}")

	m, got := mergeAll(t, e)
	require.Equal(t, []string{"s/e", "s/group/g", "s/d", "s/c", "s/a", "s/b"}, got)
	n, total := m.done()
	require.Equal(t, int64(6), total)
	require.Equal(t, total, n)
}

// TestDefinitionsFile: a --definitions group that reads a property the
// topic declares later is applied right after that declaration, whatever
// the batch size; a line that never applies is dead-lettered once, with
// the file and line; a topic record with the key of a file line is
// skipped; --emit-from leaves out the earlier events.
func TestDefinitionsFile(t *testing.T) {
	e := newEnv(t)
	prof := func(s int, m string) string {
		return fmt.Sprintf(`{"spot":"acme","member":%q,"ts":%q,"profile":{"status":"accepted"}}`, m, e.ts(s))
	}
	plan := func(s int, m, v string) string {
		return fmt.Sprintf(`{"spot":"acme","member":%q,"ts":%q,"custom":{"plan":%q}}`, m, e.ts(s), v)
	}
	e.put(t, engine.KindProfiles, 0, 1, "acme/u1", prof(1, "u1"))
	e.put(t, engine.KindProfiles, 1, 2, "acme/u2", prof(2, "u2"))
	e.put(t, engine.KindProperties, 0, 3, "acme/u1", plan(3, "u1", "pro"))
	e.put(t, engine.KindDefinitions, 0, 4, "acme/group/g",
		`{"kind":"group","spot":"acme","id":"g","type":"smart","name":"G","rule":{"field":"profile.status","op":"in","value":["invited"]}}`)
	e.put(t, engine.KindDefinitions, 0, 5, "acme/property/plan",
		`{"kind":"property","spot":"acme","id":"plan","label":"Plan","type":"single_select","options":[{"id":"pro","label":"Pro"},{"id":"free","label":"Free"}]}`)
	e.put(t, engine.KindProperties, 1, 6, "acme/u2", plan(6, "u2", "pro"))

	dir := t.TempDir()
	defs := filepath.Join(dir, "defs.ndjson")
	require.NoError(t, os.WriteFile(defs, []byte(
		`{"topic":"definitions","key":"acme/group/g","value":{"kind":"group","spot":"acme","id":"g","type":"smart","name":"G","rule":{"field":"custom.plan","op":"in","value":["pro"]}}}`+"\n"+
			`{"topic":"definitions","key":"acme/group/h","value":{"kind":"group","spot":"acme","id":"h","type":"smart","name":"H","rule":{"field":"custom.seats","op":"gt","value":3}}}`+"\n"), 0o644))

	run := func(batch int, emitFrom string) (Summary, string, []engine.DeadLetter) {
		t.Helper()
		cfg := DefaultConfig()
		cfg.Kafka = e.cfg
		cfg.BatchSize = batch
		cfg.Definitions = defs
		name := fmt.Sprintf("b%d-%s", batch, emitFrom)
		cfg.OutputFile = filepath.Join(dir, name+".ndjson")
		cfg.DeadLetterFile = filepath.Join(dir, name+".dead")
		if emitFrom != "" {
			ms, err := rule.ParseTime(emitFrom)
			require.NoError(t, err)
			cfg.EmitFrom, cfg.HasEmitFrom = ms, true
		}
		sum, err := Run(context.Background(), cfg)
		require.NoError(t, err)
		out, err := os.ReadFile(cfg.OutputFile)
		require.NoError(t, err)
		deadText, err := os.ReadFile(cfg.DeadLetterFile)
		require.NoError(t, err)
		var dead []engine.DeadLetter
		for _, l := range strings.Split(strings.TrimSpace(string(deadText)), "\n") {
			if l == "" {
				continue
			}
			var d engine.DeadLetter
			require.NoError(t, json.Unmarshal([]byte(l), &d))
			dead = append(dead, d)
		}
		return sum, string(out), dead
	}

	sum, out, dead := run(5000, "")
	require.Equal(t,
		fmt.Sprintf(`{"spot":"acme","group":"g","member":"u1","op":"add","ts":"%s","reason":"definition","seq":1}`, rule.FormatMillis(e.at(3).UnixMilli()))+"\n"+
			fmt.Sprintf(`{"spot":"acme","group":"g","member":"u2","op":"add","ts":"%s","reason":"rule","seq":1}`, rule.FormatMillis(e.at(6).UnixMilli()))+"\n",
		out, "g applies right after the property's declaration: u1 by the backfill, u2 by its record")
	require.Len(t, dead, 1, "h never applies")
	require.Equal(t, defs, dead[0].Topic)
	require.Equal(t, int64(1), dead[0].Offset)
	require.Equal(t, "acme/group/h", dead[0].Key)
	require.Equal(t, int64(8), sum.Records, "6 topic records and 2 lines")
	require.Equal(t, int64(1), sum.DefinitionsOverridden)
	require.Equal(t, int64(2), sum.Events)
	require.Equal(t, int64(1), sum.DeadLetters)
	require.Equal(t, int64(1), sum.Ends[e.cfg.Topic(engine.KindProperties)][1])

	_, out1, dead1 := run(1, "")
	require.Equal(t, out, out1, "batch size 1")
	require.Equal(t, dead, dead1)

	sum, outFrom, _ := run(5000, e.ts(5))
	require.Equal(t, strings.SplitAfter(out, "\n")[1], outFrom)
	require.Equal(t, int64(1), sum.EventsBeforeEmitFrom)
}

// TestMergeSkipsErasureTombstones: serve writes the tombstones of an
// erased member's blacklist entries into the definitions topic stamped
// with the instant it wrote them, between definitions admins wrote; the
// merge leaves them out, so the definitions after one keep their place
// among the member records instead of waiting behind it.
func TestMergeSkipsErasureTombstones(t *testing.T) {
	e := newEnv(t)
	e.put(t, engine.KindDefinitions, 0, 1, "s/group/g1", "{}")
	tomb := &kgo.Record{Topic: e.cfg.Topic(engine.KindDefinitions), Partition: 0, Key: []byte("s/blacklist/g1/u9"),
		Timestamp: e.at(100), Headers: []kgo.RecordHeader{{Key: kafka.HeaderErasure, Value: []byte("1")}}}
	require.NoError(t, e.cl.ProduceSync(context.Background(), tomb).FirstErr())
	e.put(t, engine.KindDefinitions, 0, 3, "s/group/g2", "{}")
	e.put(t, engine.KindProfiles, 0, 2, "s/a", "{}")
	e.put(t, engine.KindProfiles, 0, 4, "s/b", "{}")

	m, got := mergeAll(t, e)
	require.Equal(t, []string{"s/group/g1", "s/a", "s/group/g2", "s/b"}, got)
	var skipped int64
	for _, p := range m.readers {
		skipped += p.skipped.Load()
	}
	require.Equal(t, int64(1), skipped)
}

// mergeAll merges every input partition of e and returns the merger
// (stopped) and the keys in merge order.
func mergeAll(t *testing.T, e *testEnv) (*merger, []string) {
	t.Helper()
	ctx := context.Background()
	topics := append(e.cfg.MemberTopics(), e.cfg.Topic(engine.KindDefinitions))
	ranges, err := kafka.Ranges(ctx, e.adm, topics...)
	require.NoError(t, err)
	kinds := map[string]engine.Kind{}
	for _, tp := range topics {
		kinds[tp], _ = e.cfg.Kind(tp)
	}
	m := newMerger(ranges, kinds)
	m.start(ctx, e.cl)
	defer m.stop()
	var got []string
	for {
		r, _, err := m.next()
		if err != nil {
			break
		}
		got = append(got, string(r.Key))
	}
	return m, got
}
