package kafka

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/smartgroups/smartgroups/engine"
)

func TestEnsureTopicsCreates(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	e.ensureTopics()

	want := map[string]struct {
		partitions int
		policy     string
	}{
		e.cfg.Topic(engine.KindProfiles):    {3, "delete"},
		e.cfg.Topic(engine.KindActivities):  {3, "delete"},
		e.cfg.Topic(engine.KindProperties):  {3, "delete"},
		e.cfg.Topic(engine.KindDefinitions): {1, "compact"},
		e.cfg.MembershipsTopic():            {3, "compact"},
		e.cfg.DeadLetterTopic():             {3, "delete"},
		e.cfg.ProgressTopic():               {3, "compact"},
	}
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	details, err := e.adm.ListTopics(ctx, names...)
	require.NoError(t, err)
	configs, err := e.adm.DescribeTopicConfigs(ctx, names...)
	require.NoError(t, err)
	for n, w := range want {
		require.True(t, details.Has(n), n)
		require.Len(t, details[n].Partitions, w.partitions, n)
		rc, err := configs.On(n, nil)
		require.NoError(t, err)
		policy := ""
		for _, c := range rc.Configs {
			if c.Key == "cleanup.policy" && c.Value != nil {
				policy = *c.Value
			}
		}
		require.Equal(t, w.policy, policy, n)
	}

	// Idempotent.
	require.NoError(t, EnsureTopics(ctx, e.adm, e.cfg))
}

func TestEnsureTopicsNotCoPartitioned(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	e.cfg.Partitions = 6
	_, err := e.adm.CreateTopic(ctx, 3, -1, nil, e.cfg.Topic(engine.KindActivities))
	require.NoError(t, err)

	err = EnsureTopics(ctx, e.adm, e.cfg)
	require.Error(t, err)
	require.True(t, errors.Is(err, ErrNotCoPartitioned))
	p := e.cfg.TopicPrefix
	require.EqualError(t, err, fmt.Sprintf(
		"kafka: member topics are not co-partitioned: %sprofiles has 6 partitions, %sactivities has 3, %sproperties has 6", p, p, p))

	// The other topics were still created.
	details, err := e.adm.ListTopics(ctx, e.cfg.MembershipsTopic(), e.cfg.ProgressTopic())
	require.NoError(t, err)
	require.True(t, details.Has(e.cfg.MembershipsTopic()))
	require.True(t, details.Has(e.cfg.ProgressTopic()))
}

func TestEnsureTopicsDefinitionsPartitions(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	defs := e.cfg.Topic(engine.KindDefinitions)
	_, err := e.adm.CreateTopic(ctx, 2, -1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, defs)
	require.NoError(t, err)
	err = EnsureTopics(ctx, e.adm, e.cfg)
	require.EqualError(t, err, fmt.Sprintf("kafka: definitions topic %s must have exactly 1 partition, has 2", defs))
}

func TestEnsureTopicsProgressTooSmall(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx()
	_, err := e.adm.CreateTopic(ctx, 1, -1, nil, e.cfg.ProgressTopic())
	require.NoError(t, err)
	err = EnsureTopics(ctx, e.adm, e.cfg)
	require.ErrorContains(t, err, "fewer than the 3 of the member topics")
}

func TestTopicSpecs(t *testing.T) {
	specs := TopicSpecs(DefaultConfig())
	require.Len(t, specs, 9)
	seen := map[string]bool{}
	for _, s := range specs {
		require.False(t, seen[s.Name], s.Name)
		seen[s.Name] = true
		require.Contains(t, []string{"compact", "delete"}, s.Configs["cleanup.policy"], s.Name)
	}
	// The access topic is a table keyed <spot>/<resource>/<member>, one
	// partition per input partition like the memberships.
	require.Contains(t, specs, TopicSpec{Name: "smartgroups.access", Partitions: DefaultConfig().Partitions,
		Configs: map[string]string{"cleanup.policy": "compact"}})
}
