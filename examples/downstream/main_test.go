package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

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

func setup(t *testing.T) (sgkafka.Config, *sgkafka.Publisher) {
	t.Helper()
	emb, err := sgkafka.StartEmbedded(sgkafka.EmbeddedConfig{Addr: "127.0.0.1:0"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = emb.Close() })
	cfg := sgkafka.DefaultConfig()
	cfg.Brokers = []string{emb.Addr()}
	cfg.Partitions = 2
	cl, err := kgo.NewClient(kgo.SeedBrokers(emb.Addr()))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, sgkafka.EnsureTopics(ctx, kadm.NewClient(cl), cfg))
	pub, err := sgkafka.NewPublisher(cfg, "downstream-test", nil)
	require.NoError(t, err)
	t.Cleanup(pub.Close)
	_, err = pub.Acquire(ctx, 0)
	require.NoError(t, err)
	return cfg, pub
}

func ev(member string, op engine.Op, seq uint64) engine.Event {
	return engine.Event{Spot: "acme", Group: "g1", Member: member, Op: op, TS: "2026-11-20T09:00:00Z", Reason: engine.ReasonRule, Seq: seq}
}

func TestRunPrintsChangesAndSummary(t *testing.T) {
	cfg, pub := setup(t)
	ctx := context.Background()
	acc := func(member string, op engine.AccessOp, seq uint64, groups ...string) engine.AccessEvent {
		return engine.AccessEvent{Spot: "acme", Resource: "live-1", Member: member, Op: op, TS: "2026-11-20T09:00:00Z",
			Groups: append([]string{}, groups...), Seq: seq}
	}
	require.NoError(t, errOf(pub.Publish(ctx, sgkafka.Batch{Partition: 0, OutboxID: 3, Events: []engine.Event{
		ev("u1", engine.OpAdd, 1), ev("u2", engine.OpAdd, 1), ev("u1", engine.OpRemove, 2),
	}, Access: []engine.AccessEvent{
		acc("u1", engine.OpGrant, 1, "g1"), acc("u2", engine.OpGrant, 1, "g1"), acc("u1", engine.OpRevoke, 2),
	}})))

	var out, errOut bytes.Buffer
	code := run([]string{"--brokers", cfg.Brokers[0], "--duration", "1500ms", "--stats", "0", "--strict", "--fail-on-violation"}, &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	require.Contains(t, out.String(), "add acme/g1/u1 seq=1 reason=rule")
	require.Contains(t, out.String(), "remove acme/g1/u1 seq=2")
	require.Contains(t, out.String(), "summary: 1 memberships, 2 keys, 3 events, 0 violations")
	require.Contains(t, out.String(), "grant acme/live-1/u2 seq=1 groups=g1")
	require.Contains(t, out.String(), "revoke acme/live-1/u1 seq=2 groups= ")
	require.Contains(t, out.String(), "access: 1 grants, 2 keys, 3 events, 0 violations")
	require.NotContains(t, out.String(), "VIOLATION")
}

func TestRunFailsOnViolation(t *testing.T) {
	cfg, _ := setup(t)
	// A duplicate written outside the exactly-once path.
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.DefaultProduceTopic(cfg.MembershipsTopic()))
	require.NoError(t, err)
	defer cl.Close()
	v, err := json.Marshal(ev("u1", engine.OpAdd, 1))
	require.NoError(t, err)
	rec := func() *kgo.Record { return &kgo.Record{Key: []byte("acme/g1/u1"), Value: v} }
	require.NoError(t, cl.ProduceSync(context.Background(), rec(), rec()).FirstErr())

	var out, errOut bytes.Buffer
	code := run([]string{"--brokers", cfg.Brokers[0], "--duration", "1500ms", "--quiet", "--fail-on-violation"}, &out, &errOut)
	require.Equal(t, 2, code, errOut.String())
	require.Contains(t, out.String(), "VIOLATION duplicate")
	require.NotContains(t, out.String(), "add acme/g1/u1", "--quiet")
}

func TestRunBadFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	require.Equal(t, 1, run([]string{"--nope"}, &out, &errOut))
	require.Equal(t, 1, run([]string{"--sasl-mechanism", "gssapi"}, &out, &errOut))
	require.True(t, strings.Contains(errOut.String(), "unknown SASL mechanism"))
}

// errOf returns the error of a Publish call.
func errOf(_ sgkafka.Committed, err error) error { return err }
