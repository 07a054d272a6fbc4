package kafka

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestOwners: a deployment claims its output topics; its other instances
// (same group id and transactional id prefix) share the claim; another
// deployment is refused with the owner named, unless it takes over; a
// released claim, or the claim on a topic deleted and created again, no
// longer counts.
func TestOwners(t *testing.T) {
	e := newEnv(t)
	e.cfg.OwnersTopic = e.cfg.TopicPrefix + "owners" // not shared with other tests on a real broker
	e.ensureTopics()
	ctx := e.ctx()
	topics := []string{e.cfg.MembershipsTopic(), e.cfg.AccessTopic()}

	ow, err := NewOwners(e.cfg)
	require.NoError(t, err)
	defer ow.Close()
	me := ServeOwner(e.cfg)
	other := me
	other.GroupID = e.cfg.GroupID + "-other"

	// A race: other reads (nothing is claimed), me claims, other writes
	// its claim. The first claim written after other's read wins: other
	// is refused and puts me's claim back as the latest.
	current, _, from, err := ow.read(ctx, -1)
	require.NoError(t, err)
	require.Empty(t, current)
	otherRecs, _, err := ow.claimRecords(ctx, other, topics, false, current)
	require.NoError(t, err)
	prev, err := ow.Claim(ctx, me, topics, false)
	require.NoError(t, err)
	require.Empty(t, prev)
	require.NoError(t, e.cl.ProduceSync(ctx, otherRecs...).FirstErr())
	var owned *OwnedError
	err = ow.settle(ctx, other, otherRecs, from)
	require.True(t, errors.As(err, &owned), "the later claimant loses the race: %v", err)
	require.True(t, owned.Owner.Same(me))

	claims, err := ow.Read(ctx)
	require.NoError(t, err)
	require.Len(t, claims, 2)
	require.Equal(t, e.cfg.GroupID, claims[e.cfg.MembershipsTopic()].GroupID)

	// Another instance of the same deployment: nothing to do.
	again := me
	again.Host = "another-host"
	_, err = ow.Claim(ctx, again, topics, false)
	require.NoError(t, err)

	// Another deployment: refused, naming the owner.
	_, err = ow.Claim(ctx, other, topics, false)
	require.True(t, errors.As(err, &owned), "%v", err)
	require.Equal(t, e.cfg.MembershipsTopic(), owned.Topic)
	require.Contains(t, err.Error(), `group id "`+e.cfg.GroupID+`"`)
	otherTxn := me
	otherTxn.TransactionalIDPrefix += "x-"
	_, err = ow.Claim(ctx, otherTxn, topics, false)
	require.True(t, errors.As(err, &owned), "another transactional id prefix is another deployment: %v", err)

	// A take-over moves the claims and returns the previous owner.
	prev, err = ow.Claim(ctx, other, topics, true)
	require.NoError(t, err)
	require.Len(t, prev, 2)
	require.True(t, prev[0].Same(me))
	_, err = ow.Claim(ctx, me, topics, false)
	require.True(t, errors.As(err, &owned), "the first deployment is refused after the take-over: %v", err)

	// Released: anyone may claim.
	released, err := ow.Release(ctx, me, topics)
	require.NoError(t, err)
	require.Empty(t, released, "me owns nothing any more")
	released, err = ow.Release(ctx, other, topics)
	require.NoError(t, err)
	require.ElementsMatch(t, topics, released)
	_, err = ow.Claim(ctx, me, topics, false)
	require.NoError(t, err)

	// A topic deleted and created again is free.
	_, err = e.adm.DeleteTopics(ctx, e.cfg.AccessTopic())
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := e.adm.CreateTopic(ctx, 1, -1, nil, e.cfg.AccessTopic())
		return err == nil
	}, 30*time.Second, 200*time.Millisecond)
	require.Eventually(t, func() bool {
		_, err = ow.Claim(ctx, other, []string{e.cfg.AccessTopic()}, false)
		return err == nil
	}, 30*time.Second, 200*time.Millisecond, "%v", err)
}

// TestReadRange: a bounded read stops at the end it was given even while
// records keep coming, and returns committed records only.
func TestReadRange(t *testing.T) {
	e := newEnv(t)
	topic := e.cfg.TopicPrefix + "range"
	_, err := e.adm.CreateTopic(e.ctx(), 1, -1, nil, topic)
	require.NoError(t, err)
	rec := func(v string) *kgo.Record { return &kgo.Record{Topic: topic, Partition: 0, Value: []byte(v)} }
	e.produce(rec("a"), rec("b"))
	e.produceTxn(false, rec("aborted"))
	e.produceTxn(true, rec("c"))
	ranges, err := Ranges(e.ctx(), e.adm, topic)
	require.NoError(t, err)
	require.Len(t, ranges, 1)
	e.produce(rec("after the end"))

	var got []string
	require.NoError(t, ReadRange(e.ctx(), e.cl, ranges[0], func(r *kgo.Record) error {
		got = append(got, string(r.Value))
		return nil
	}))
	require.Equal(t, []string{"a", "b", "c"}, got)
}
