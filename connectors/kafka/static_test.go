package kafka

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/smartgroups/smartgroups/engine"
)

// groupInstances returns the instance ids of the group's members ("" for a
// dynamic member).
func (e *testEnv) groupInstances() []string {
	e.t.Helper()
	described, err := e.adm.DescribeGroups(e.ctx(), e.cfg.GroupID)
	require.NoError(e.t, err)
	g := described[e.cfg.GroupID]
	require.NoError(e.t, g.Err)
	var ids []string
	for _, m := range g.Members {
		id := ""
		if m.InstanceID != nil {
			id = *m.InstanceID
		}
		ids = append(ids, id)
	}
	return ids
}

// TestConsumerStaticMember checks static membership: Close keeps the
// instance in the group, a new Consumer with the same instance id takes
// its partitions back while the old session is still alive (the default
// session timeout is 45s, longer than pollN waits), and Leave removes the
// instance from the group.
func TestConsumerStaticMember(t *testing.T) {
	e := newEnv(t)
	e.ensureTopics()
	profiles := e.cfg.Topic(engine.KindProfiles)
	cfg := e.cfg
	cfg.InstanceID = "static-a"
	for p := range int32(3) {
		e.produce(memberRecord(profiles, p, 0))
	}

	h1 := &hookLog{}
	c1, err := NewConsumer(cfg, h1.hooks(), nil, fastGroup()...)
	require.NoError(t, err)
	require.Len(t, pollN(t, c1, 3), 3)
	require.Equal(t, []string{"static-a"}, e.groupInstances())
	c1.Close()
	_, revoked := h1.counts()
	require.Equal(t, 9, revoked, "closing revokes every partition locally")
	require.Equal(t, []string{"static-a"}, e.groupInstances(), "a closed static member stays in the group")

	// The restart: the same instance id gets every partition back, and
	// reads from the positions its hook returns.
	h2 := &hookLog{offsets: Offsets{profiles: {0: 1, 1: 1, 2: 1}}}
	c2, err := NewConsumer(cfg, h2.hooks(), nil, fastGroup()...)
	require.NoError(t, err)
	e.produce(memberRecord(profiles, 1, 1))
	got := pollN(t, c2, 1)
	require.Equal(t, int32(1), got[0].Partition)
	require.Equal(t, int64(1), got[0].Offset)
	assigned, _ := h2.counts()
	require.Equal(t, 9, assigned)
	require.Equal(t, []string{"static-a"}, e.groupInstances())

	require.NoError(t, c2.Leave(e.ctx()))
	require.NoError(t, c2.Leave(e.ctx()), "Leave is idempotent")
	_, revoked = h2.counts()
	require.Equal(t, 9, revoked)
	require.Empty(t, e.groupInstances(), "Leave removes the static member from the group")
}

// TestConsumerLeaveDynamic checks that Leave of a dynamic member leaves the
// group like Close.
func TestConsumerLeaveDynamic(t *testing.T) {
	e := newEnv(t)
	e.ensureTopics()
	e.produce(memberRecord(e.cfg.Topic(engine.KindProfiles), 0, 0))
	h := &hookLog{}
	c, err := NewConsumer(e.cfg, h.hooks(), nil, fastGroup()...)
	require.NoError(t, err)
	pollN(t, c, 1)
	require.Equal(t, []string{""}, e.groupInstances())
	require.NoError(t, c.Leave(e.ctx()))
	require.Empty(t, e.groupInstances())
}
