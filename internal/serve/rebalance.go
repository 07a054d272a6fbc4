package serve

import (
	"context"
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
// owner, bring the local state up to date (republish our unpublished
// outbox, or restore from the changelog), reconcile with the definitions,
// and return the input positions to resume at.
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
		marker, err := s.pub.Acquire(ctx, p)
		if err != nil {
			return nil, err
		}
		if marker.Instance != "" && marker.Instance != s.instance {
			if err := s.restore(ctx, p, marker); err != nil {
				return nil, err
			}
			continue
		}
		pending, err := s.eng.Pending(p)
		if err != nil {
			return nil, err
		}
		for _, o := range pending {
			if marker.Instance == s.instance && o.ID <= marker.OutboxID {
				if err := s.eng.Ack(p, o.ID); err != nil {
					return nil, err
				}
				continue
			}
			if err := s.publishEntry(ctx, o); err != nil {
				return nil, err
			}
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

func (s *server) restore(ctx context.Context, p int32, marker kafka.ProgressMarker) error {
	s.restoresRunning.Inc()
	defer s.restoresRunning.Dec()
	start := time.Now()
	s.log.Info("restoring partition from the changelog", "partition", p, "published_by", marker.Instance)
	if err := s.eng.DropPartition(p); err != nil {
		return err
	}
	n := 0
	err := s.pub.ReadChangelog(ctx, p, func(entries []engine.ChangelogEntry, remaining int64) error {
		n += len(entries)
		s.restoreRecords.Add(float64(len(entries)))
		s.restoreRemaining.Set(float64(remaining))
		return s.eng.RestorePartition(p, entries, false)
	})
	if err != nil {
		return err
	}
	if err := s.eng.RestorePartition(p, nil, true); err != nil {
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
