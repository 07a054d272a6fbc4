package kafka

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/smartgroups/smartgroups/engine"
)

func changes(keys ...string) []engine.ChangelogEntry {
	out := make([]engine.ChangelogEntry, len(keys))
	for i, k := range keys {
		out[i] = engine.ChangelogEntry{Key: []byte(k), Value: []byte("v-" + k)}
	}
	return out
}

// TestPublishReturnsChangelogOffset checks that Publish returns the offset
// of the batch's last changelog record and that ReadChangelog from the
// offset after it returns exactly the next batch's entries.
func TestPublishReturnsChangelogOffset(t *testing.T) {
	e := newEnv(t)
	e.ensureTopics()
	ctx := e.ctx()
	pub := newPublisher(t, e, nil)
	_, err := pub.Acquire(ctx, 0)
	require.NoError(t, err)

	c1, err := pub.Publish(ctx, Batch{Partition: 0, OutboxID: 1, Changelog: changes("a", "b")})
	require.NoError(t, err)
	require.Equal(t, int64(1), c1.ChangelogOffset)
	require.False(t, c1.ChangelogTime.IsZero())
	second := changes("c", "d", "e")
	c2, err := pub.Publish(ctx, Batch{Partition: 0, OutboxID: 2, Changelog: second})
	require.NoError(t, err)
	require.Greater(t, c2.ChangelogOffset, c1.ChangelogOffset+int64(len(second))-1)
	c3, err := pub.Publish(ctx, Batch{Partition: 0, OutboxID: 3, Events: []engine.Event{event("g", "u", engine.OpAdd, 1)}})
	require.NoError(t, err)
	require.Equal(t, int64(-1), c3.ChangelogOffset, "a batch without changelog records")

	var got []engine.ChangelogEntry
	last := engine.NoSnapshotTag
	require.NoError(t, pub.ReadChangelog(ctx, 0, c1.ChangelogOffset+1, func(entries []engine.ChangelogEntry, through engine.SnapshotTag, _ int64) error {
		got = append(got, entries...)
		if through.Offset >= 0 {
			last = through
		}
		return nil
	}))
	require.Equal(t, second, got)
	require.Equal(t, c2.ChangelogOffset, last.Offset)
	require.Equal(t, c2.ChangelogTime.UnixMilli(), last.Time.UnixMilli())
}

// TestPublisherRecover checks what Recover concludes after a failed
// Publish: not committed while the last marker is still the one before
// the batch, committed when it is the batch's, taken over when another
// publisher wrote since. A new Publisher of the same instance (a restart)
// starts its batch ids again without being skipped.
func TestPublisherRecover(t *testing.T) {
	e := newEnv(t)
	e.ensureTopics()
	ctx := e.ctx()
	a := newPublisher(t, e, nil)
	_, err := a.Acquire(ctx, 1)
	require.NoError(t, err)
	b1 := Batch{Partition: 1, OutboxID: 1, Changelog: changes("a")}
	require.NoError(t, errOf(a.Publish(ctx, b1)))

	b2 := Batch{Partition: 1, OutboxID: 2, Changelog: changes("b")}
	committed, err := a.Recover(ctx, b2) // as if Publish(b2) had failed
	require.NoError(t, err)
	require.False(t, committed)
	committed, err = a.Recover(ctx, b1)
	require.NoError(t, err)
	require.True(t, committed)

	// A restart: same instance, new run; ids start again at 1.
	a2 := newPublisher(t, e, nil)
	marker, err := a2.Acquire(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, uint64(1), marker.OutboxID)
	require.NotEqual(t, a2.run, marker.Run)
	c, err := a2.Publish(ctx, Batch{Partition: 1, OutboxID: 1, Changelog: changes("c")})
	require.NoError(t, err)
	require.GreaterOrEqual(t, c.ChangelogOffset, int64(0), "the new run's first batch was skipped")

	committed, err = a.Recover(ctx, b2)
	require.ErrorIs(t, err, ErrTakenOver)
	require.False(t, committed)
}
