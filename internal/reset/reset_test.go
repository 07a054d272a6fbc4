package reset

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/smartgroups/smartgroups/connectors/kafka"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestDynamicMemberAndPlan: a dynamic member of the group (one without an
// instance id) makes reset refuse, deleting nothing; once it left, reset
// deletes the changelog, the progress topic and the group, and with
// DeleteOutputs the output topics. Runs on KAFKA_BROKERS when set.
func TestDynamicMemberAndPlan(t *testing.T) {
	cfg := kafka.DefaultConfig()
	if v := strings.TrimSpace(os.Getenv("KAFKA_BROKERS")); v != "" {
		cfg.Brokers = strings.Split(v, ",")
	} else {
		emb, err := kafka.StartEmbedded(kafka.EmbeddedConfig{Addr: "127.0.0.1:0"})
		require.NoError(t, err)
		t.Cleanup(func() { _ = emb.Close() })
		cfg.Brokers = []string{emb.Addr()}
	}
	id := strings.ToLower(t.Name()) + "-" + time.Now().Format("150405.000000")
	cfg.TopicPrefix = "reset-test." + id + "."
	cfg.GroupID = "reset-test-" + id
	cfg.OwnersTopic = cfg.TopicPrefix + "owners"
	cfg.Partitions = 2
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	require.NoError(t, err)
	defer cl.Close()
	adm := kadm.NewClient(cl)
	require.NoError(t, kafka.EnsureTopics(ctx, adm, cfg))
	t.Cleanup(func() {
		if os.Getenv("KAFKA_BROKERS") == "" {
			return
		}
		all, err := adm.ListTopics(context.Background())
		if err != nil {
			return
		}
		var mine []string
		for _, n := range all.Names() {
			if strings.HasPrefix(n, cfg.TopicPrefix) {
				mine = append(mine, n)
			}
		}
		_, _ = adm.DeleteTopics(context.Background(), mine...)
	})

	member, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.ConsumerGroup(cfg.GroupID),
		kgo.ConsumeTopics(cfg.MemberTopics()...), kgo.FetchMaxWait(100*time.Millisecond))
	require.NoError(t, err)
	stopPoll := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for {
			select {
			case <-stopPoll:
				return
			default:
			}
			pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
			member.PollFetches(pctx)
			pcancel()
		}
	}()

	r, err := New(Config{Kafka: cfg, LiveWait: time.Second})
	require.NoError(t, err)
	defer r.Close()
	var plan Plan
	require.Eventually(t, func() bool {
		plan, err = r.Inspect(ctx)
		return err == nil && len(plan.Members) == 1
	}, time.Minute, 100*time.Millisecond, "the member joins: %v", err)
	require.Equal(t, "", plan.Members[0].InstanceID)
	require.ElementsMatch(t, []string{cfg.ChangelogTopic(), cfg.ProgressTopic()}, plan.Topics)
	var out bytes.Buffer
	plan.Print(&out)
	require.Contains(t, out.String(), "must not be running")

	err = r.Execute(ctx, plan, &out)
	require.True(t, errors.Is(err, ErrLive), "%v", err)
	require.Contains(t, err.Error(), "dynamic members")
	require.True(t, exists(ctx, t, adm, cfg.ChangelogTopic()), "nothing is deleted")

	close(stopPoll)
	<-polled
	member.Close() // leaves the group
	withOutputs, err := New(Config{Kafka: cfg, LiveWait: time.Second, DeleteOutputs: true})
	require.NoError(t, err)
	defer withOutputs.Close()
	plan, err = withOutputs.Inspect(ctx)
	require.NoError(t, err)
	require.Empty(t, plan.Members)
	require.ElementsMatch(t, []string{cfg.ChangelogTopic(), cfg.ProgressTopic(), cfg.MembershipsTopic(), cfg.AccessTopic()}, plan.Topics)
	require.NoError(t, withOutputs.Execute(ctx, plan, &out))
	for _, tp := range plan.Topics {
		require.False(t, exists(ctx, t, adm, tp), "%s is deleted", tp)
	}
	for _, tp := range []string{cfg.Topic("profiles"), cfg.Topic("definitions"), cfg.DeadLetterTopic()} {
		require.True(t, exists(ctx, t, adm, tp), "%s is kept", tp)
	}
	plan, err = withOutputs.Inspect(ctx)
	require.NoError(t, err)
	require.False(t, plan.GroupExists)
}

// exists reports whether a topic exists, as the brokers say now.
func exists(ctx context.Context, t *testing.T, adm *kadm.Client, topic string) bool {
	t.Helper()
	d, err := adm.ListTopics(kadm.WithAuthorizedOps(ctx), topic)
	require.NoError(t, err)
	td, ok := d[topic]
	return ok && td.Err == nil
}
