package kafka

import (
	"context"
	"crypto/tls"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func startEmbedded(t *testing.T, cfg EmbeddedConfig) *Embedded {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	e, err := StartEmbedded(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func TestEmbeddedProduceConsume(t *testing.T) {
	emb := startEmbedded(t, EmbeddedConfig{})
	require.True(t, strings.HasPrefix(emb.Addr(), "127.0.0.1:"), emb.Addr())
	require.NotEqual(t, "127.0.0.1:0", emb.Addr())

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(emb.Addr()), kgo.DefaultProduceTopic("t1"),
		kgo.ConsumeTopics("t1"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cl.Close()
	adm := kadm.NewClient(cl)
	_, err = adm.CreateTopic(ctx, 2, 1, nil, "t1")
	require.NoError(t, err)

	var sent []*kgo.Record
	for i := range 10 {
		sent = append(sent, &kgo.Record{Key: []byte{byte('a' + i)}, Value: []byte{byte(i)}})
	}
	require.NoError(t, cl.ProduceSync(ctx, sent...).FirstErr())

	got := map[string]byte{}
	for len(got) < 10 {
		fs := cl.PollFetches(ctx)
		require.NoError(t, fs.Err0())
		fs.EachRecord(func(r *kgo.Record) { got[string(r.Key)] = r.Value[0] })
	}
	for i := range 10 {
		require.Equal(t, byte(i), got[string(rune('a'+i))])
	}
}

func TestEmbeddedKcatMetadata(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if _, serr := os.Stat("/usr/bin/kcat"); serr != nil {
			t.Skip("kcat not installed")
		}
		kcat = "/usr/bin/kcat"
	}
	emb := startEmbedded(t, EmbeddedConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(emb.Addr()))
	require.NoError(t, err)
	defer cl.Close()
	_, err = kadm.NewClient(cl).CreateTopic(ctx, 3, 1, nil, "kcat-topic")
	require.NoError(t, err)

	out, err := exec.CommandContext(ctx, kcat, "-b", emb.Addr(), "-L", "-t", "kcat-topic").CombinedOutput()
	require.NoError(t, err, string(out))
	require.Contains(t, string(out), `topic "kcat-topic" with 3 partitions`)
	require.Contains(t, string(out), emb.Addr())
}

func TestEmbeddedPersistence(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	emb, err := StartEmbedded(EmbeddedConfig{Addr: "127.0.0.1:0", DataDir: dir})
	require.NoError(t, err)
	cl, err := kgo.NewClient(kgo.SeedBrokers(emb.Addr()), kgo.DefaultProduceTopic("persisted"))
	require.NoError(t, err)
	_, err = kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "persisted")
	require.NoError(t, err)
	require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Value: []byte("one")}, &kgo.Record{Value: []byte("two")}).FirstErr())
	cl.Close()
	require.NoError(t, emb.Close())
	require.NoError(t, emb.Close()) // idempotent

	emb2 := startEmbedded(t, EmbeddedConfig{DataDir: dir})
	cl2, err := kgo.NewClient(kgo.SeedBrokers(emb2.Addr()), kgo.ConsumeTopics("persisted"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cl2.Close()
	var got []string
	for len(got) < 2 {
		fs := cl2.PollFetches(ctx)
		require.NoError(t, fs.Err0())
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	require.Equal(t, []string{"one", "two"}, got)
}

func TestEmbeddedBadAddr(t *testing.T) {
	_, err := StartEmbedded(EmbeddedConfig{Addr: "nonsense"})
	require.ErrorContains(t, err, "embedded broker address")
	_, err = StartEmbedded(EmbeddedConfig{Addr: "127.0.0.1:99999"})
	require.ErrorContains(t, err, "bad port")

	// Port in use.
	emb := startEmbedded(t, EmbeddedConfig{})
	_, err = StartEmbedded(EmbeddedConfig{Addr: emb.Addr()})
	require.Error(t, err)
}

// TestConfigSecurityAgainstEmbedded checks that the SASL and TLS options of
// Config reach the wire: kfake is started with SCRAM and TLS.
func TestConfigSecurityAgainstEmbedded(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := writeTestCerts(t, dir)
	pair, err := tls.LoadX509KeyPair(cert, key)
	require.NoError(t, err)

	for _, mech := range []struct{ kfake, ours string }{
		{"PLAIN", SASLPlain},
		{"SCRAM-SHA-256", SASLScramSHA256},
		{"SCRAM-SHA-512", SASLScramSHA512},
	} {
		t.Run(mech.ours, func(t *testing.T) {
			emb := startEmbedded(t, EmbeddedConfig{Opts: []kfake.Opt{
				kfake.EnableSASL(),
				kfake.Superuser(mech.kfake, "alice", "s3cret"),
				kfake.TLS(&tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}),
			}})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()

			cfg := DefaultConfig()
			cfg.Brokers = []string{emb.Addr()}
			cfg.TLS = TLSConfig{Enable: true, CAFile: ca}
			cfg.SASL = SASLConfig{Mechanism: mech.ours, User: "alice", Password: "s3cret"}
			require.NoError(t, cfg.Validate())
			opts, err := cfg.ClientOpts()
			require.NoError(t, err)
			cl, err := kgo.NewClient(opts...)
			require.NoError(t, err)
			defer cl.Close()
			require.NoError(t, EnsureTopics(ctx, kadm.NewClient(cl), cfg))

			// Wrong password is refused.
			cfg.SASL.Password = "wrong"
			opts, err = cfg.ClientOpts()
			require.NoError(t, err)
			bad, err := kgo.NewClient(append(opts, kgo.RequestRetries(0))...)
			require.NoError(t, err)
			defer bad.Close()
			_, err = kadm.NewClient(bad).ListTopics(ctx)
			require.Error(t, err)
		})
	}
}
