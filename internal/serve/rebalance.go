package serve

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/smartgroups/smartgroups/connectors/kafka"
	"github.com/smartgroups/smartgroups/engine"
)

// partitionsOf returns the partitions of an assignment, over all topics,
// sorted.
func partitionsOf(a kafka.Assignment) []int32 {
	set := map[int32]bool{}
	for _, ps := range a {
		for _, p := range ps {
			set[p] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// onAssigned takes over newly assigned partitions: fence the previous
// owner, restore the committed state (the local snapshot and the
// changelog after it, or the whole changelog), reconcile with the
// definitions, and return the input positions to resume at, which come
// from the restored state.
func (s *server) onAssigned(ctx context.Context, assigned kafka.Assignment) (kafka.Offsets, error) {
	s.work.Lock()
	defer s.work.Unlock()
	if err := s.drain(); err != nil {
		s.asyncErr = err
		return nil, err
	}
	parts := partitionsOf(assigned)
	s.restoring.Add(1)
	defer s.restoring.Add(-1)
	for _, p := range parts {
		// Fence first: nothing can commit behind the restore.
		marker, err := s.pub.Acquire(ctx, p)
		if err != nil {
			return nil, err
		}
		if err := s.restore(ctx, p, marker); err != nil {
			return nil, err
		}
	}
	// The previous owners are fenced now: what they published reflects at
	// most the definitions committed so far. Apply those before
	// reconciling, or reconciliation would roll the partitions back to
	// older definitions.
	if err := s.catchUpDefinitions(ctx); err != nil {
		return nil, err
	}
	res, err := s.eng.Assign(ctx, parts)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	for _, p := range parts {
		s.owned[p] = true
	}
	s.mu.Unlock()
	if err := s.publish(ctx, res); err != nil {
		return nil, err
	}
	out := kafka.Offsets{}
	for topic, ps := range assigned {
		kind, _ := s.cfg.Kafka.Kind(topic)
		out[topic] = map[int32]int64{}
		for _, p := range ps {
			off, ok, err := s.eng.Position(kind, topic, p)
			if err != nil {
				return nil, err
			}
			if !ok {
				off = -1
			}
			out[topic][p] = off
		}
	}
	s.log.Info("partitions assigned", "partitions", parts)
	return out, nil
}

// catchUpDefinitions applies the definitions committed on the topic that
// the tail has not delivered yet.
func (s *server) catchUpDefinitions(ctx context.Context) error {
	if s.cons == nil {
		return nil
	}
	topic := s.cfg.Kafka.Topic(engine.KindDefinitions)
	from, _, err := s.eng.Position(engine.KindDefinitions, topic, 0)
	if err != nil {
		return err
	}
	recs, err := s.cons.CatchUpDefinitions(ctx, from)
	if err != nil {
		return err
	}
	return s.processAll(ctx, recs)
}

// restore loads a partition's committed state: the local snapshot and the
// changelog after its tag when the snapshot is usable, otherwise the whole
// changelog over an empty state. A snapshot is usable when it has a tag
// (the store of an earlier version has none), the tag is inside the
// changelog, and it is younger than the changelog's delete.retention.ms
// (an older one may miss a tombstone compaction removed since).
func (s *server) restore(ctx context.Context, p int32, marker kafka.ProgressMarker) error {
	s.restoresRunning.Inc()
	defer s.restoresRunning.Dec()
	start := time.Now()
	snap, ok, err := s.eng.Snapshot(p)
	if err != nil {
		return err
	}
	end, err := s.pub.ChangelogEnd(ctx, p)
	if err != nil {
		return err
	}
	from, why := int64(-1), "no local snapshot"
	switch age := time.Since(snap.Time); {
	case !ok:
	case snap.Offset >= end:
		why = fmt.Sprintf("the local snapshot's changelog offset %d is past the changelog's end %d", snap.Offset, end)
	case age >= s.deleteRetention:
		why = fmt.Sprintf("the local snapshot is %v old, not younger than the changelog's delete.retention.ms %v",
			age.Round(time.Second), s.deleteRetention)
	default:
		from, why = snap.Offset+1, "local snapshot"
	}
	s.log.Info("restoring partition from the changelog", "partition", p, "published_by", marker.Instance,
		"from_offset", from, "end_offset", end, "base", why)
	if from < 0 {
		if err := s.eng.DropPartition(p); err != nil {
			return err
		}
	}
	n := 0
	err = s.pub.ReadChangelog(ctx, p, from, func(entries []engine.ChangelogEntry, through engine.SnapshotTag, remaining int64) error {
		n += len(entries)
		s.restoreRecords.Add(float64(len(entries)))
		s.restoreRemaining.Set(float64(remaining))
		return s.eng.RestorePartition(p, entries, through, false)
	})
	if err != nil {
		return err
	}
	if err := s.eng.RestorePartition(p, nil, engine.NoSnapshotTag, true); err != nil {
		return err
	}
	s.restoreRemaining.Set(0)
	s.log.Info("partition restored", "partition", p, "records", n, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func (s *server) onRevoked(_ context.Context, revoked kafka.Assignment) {
	s.work.Lock()
	defer s.work.Unlock()
	if err := s.drain(); err != nil && s.asyncErr == nil {
		s.asyncErr = err
	}
	parts := partitionsOf(revoked)
	s.eng.Revoke(parts)
	s.mu.Lock()
	for _, p := range parts {
		delete(s.owned, p)
	}
	s.mu.Unlock()
	for _, p := range parts {
		s.pub.Release(p)
	}
	s.log.Info("partitions revoked", "partitions", parts)
}
