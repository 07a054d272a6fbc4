package serve

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/smartgroups/smartgroups/connectors/kafka"
	"github.com/smartgroups/smartgroups/engine"
)

// loop polls, processes and publishes member records until ctx is done or
// a fatal error, firing due timers between polls.
func (s *server) loop(ctx context.Context, cons *kafka.Consumer) error {
	lastTick := time.Now()
	for {
		pollCtx, cancel := context.WithTimeout(ctx, s.cfg.TickInterval)
		recs, err := cons.Poll(pollCtx, s.cfg.BatchSize)
		cancel()
		if ctx.Err() != nil {
			s.work.Lock()
			if err := s.drain(); err != nil {
				// Safe: the entries stay in the outbox, and the
				// next run publishes them before anything else.
				s.log.Info("shutting down with output left unpublished; it is published on restart", "err", err)
			}
			s.work.Unlock()
			return ctx.Err()
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			// kgo reports a failed join or sync (a timeout during a
			// rebalance, being kicked out of the group) as an
			// ErrGroupSession in a poll: owned partitions were lost
			// (OnRevoked ran) and the client keeps rejoining on its
			// own, so this is not fatal, unless rejoining cannot help.
			var gs *kgo.ErrGroupSession
			switch {
			case groupErrorFatal(err):
				return err
			case errors.As(err, &gs):
				if s.health.recentOutage(outageAftermath) {
					s.log.Info("consumer group session lost in the Kafka outage; rejoining", "err", err)
				} else {
					s.log.Warn("consumer group session error; rejoining", "err", err)
				}
			case s.waitKafka(ctx):
				// A fetch failed while Kafka was unreachable; it
				// answers again: poll again.
			default:
				return err
			}
		}
		// The rebalance hooks run on kgo's goroutines, not only while
		// Poll blocks: hold work so that a hook never interleaves with a
		// batch (its outbox entries would race ours to the publisher).
		s.work.Lock()
		err = s.step(ctx, recs, &lastTick)
		if err != nil {
			// Let a publication in flight finish before the caller
			// closes the clients it uses.
			_ = s.drain()
		}
		s.work.Unlock()
		if err != nil {
			return err
		}
	}
}

// step processes and publishes one polled batch, fires due timers and
// flushes the definitions outbox.
//
// Publishing is pipelined: a batch's output is published in the
// background while the next batch is polled and processed; the next
// publication (or a rebalance hook) first waits for it, so each
// partition's transactions stay in order. A batch lives only in memory
// until its transaction commits (then it is persisted); if a publication
// fails, the error comes back here or in a hook before the next batch is
// published, and the instance stops with it: the batch processed
// meanwhile is never published, and a restart restores every partition
// from its persisted snapshot and the changelog.
func (s *server) step(ctx context.Context, recs []engine.Record, lastTick *time.Time) error {
	if err := s.asyncErr; err != nil {
		return err
	}
	if len(recs) > 0 {
		res, err := s.process(ctx, recs)
		if err != nil {
			return err
		}
		if err := s.publishAsync(ctx, res); err != nil {
			return err
		}
	}
	if time.Since(*lastTick) >= s.cfg.TickInterval {
		*lastTick = time.Now()
		res, err := s.eng.Tick(ctx)
		if err != nil {
			return err
		}
		if err := s.publishAsync(ctx, res); err != nil {
			return err
		}
	}
	return s.flushDefinitionOutbox(ctx)
}

// publishAsync waits for the previous publication, then starts publishing
// res in the background. Called with work held.
func (s *server) publishAsync(ctx context.Context, res *engine.Result) error {
	if err := s.drain(); err != nil {
		return err
	}
	if len(res.Outbox) == 0 && len(res.Events) == 0 {
		return nil
	}
	done := make(chan error, 1)
	s.inflight = done
	// The entries are committed to the store: publish them even if the
	// shutdown begins meanwhile (pubCtx outlives ctx for a grace period).
	pubCtx := s.pubCtx
	if pubCtx == nil {
		pubCtx = ctx
	}
	go func() { done <- s.publish(pubCtx, res) }()
	return nil
}

// drain waits for the publication in flight, if any, and returns its
// error. Called with work held.
func (s *server) drain() error {
	if s.inflight == nil {
		return nil
	}
	err := <-s.inflight
	s.inflight = nil
	return err
}

// publish publishes a result's outbox entries of member partitions and
// acknowledges them; definition dead letters are handled by
// flushDefinitionOutbox.
func (s *server) publish(ctx context.Context, res *engine.Result) error {
	// One transaction per partition; partitions publish concurrently.
	var wg sync.WaitGroup
	errs := make([]error, len(res.Outbox))
	for i, o := range res.Outbox {
		if o.Partition == engine.DefPartition {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.publishEntry(ctx, o)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	s.eng.ObserveLatency(res)
	if s.api != nil && len(res.Events) > 0 {
		s.api.Publish(res.Events)
	}
	if s.cfg.OnEvents != nil && len(res.Events) > 0 {
		s.cfg.OnEvents(res.Events)
	}
	return nil
}

// publishEntry publishes one partition's output of a batch in one
// transaction, then persists the batch's state changes with the offset of
// its last changelog record. A failed transaction is retried once when
// Recover shows that it did not commit and nobody else published the
// partition since (the state in memory is then still exactly the
// committed state plus this batch); any other failure is returned, and
// the instance must not go on with the partition's state in memory.
func (s *server) publishEntry(ctx context.Context, o engine.OutboxEntry) error {
	b := kafka.Batch{Partition: o.Partition, Events: o.Events, Access: o.Access, DeadLetters: o.DeadLetters,
		Changelog: o.Changelog, DefinitionTombstones: o.DefinitionTombstones, OutboxID: o.ID}
	c, err := s.pub.Publish(ctx, b)
	for retried := false; err != nil; retried = true {
		if ctx.Err() != nil {
			// Shutting down: the batch is dropped unpublished; its input
			// positions were not committed, so the next run reads its
			// records again. Nothing to warn about.
			return fmt.Errorf("serve: partition %d: publication abandoned on shutdown: %w", o.Partition, err)
		}
		if retried {
			select { // do not spin on a failure that lasts
			case <-ctx.Done():
				continue
			case <-time.After(probeInterval):
			}
		}
		switch {
		case s.waitKafka(ctx) || s.health.recentOutage(outageAftermath):
			// Kafka is unreachable (the probe logs the outage once)
			// or was a moment ago (the transaction timed out in it):
			// once it answers, fence again and publish again, for as
			// long as outages last.
			s.log.Info("publishing again after the Kafka outage", "partition", o.Partition, "batch", o.ID, "err", err)
		case retried:
			return fmt.Errorf("serve: partition %d: publish: %w", o.Partition, err)
		default:
			// One retry with a fresh producer: Recover fences again and
			// tells whether the transaction committed after all.
			s.log.Warn("publish failed; acquiring the partition again", "partition", o.Partition, "err", err)
		}
		committed, rerr := s.pub.Recover(ctx, b)
		switch {
		case errors.Is(rerr, kafka.ErrTakenOver):
			return fmt.Errorf("serve: partition %d: publish: %w (recover: %w)", o.Partition, err, rerr)
		case rerr != nil:
			err = fmt.Errorf("%w (recover: %w)", err, rerr)
		case committed:
			// It committed after all; where its changelog ended is
			// unknown, so the snapshot keeps its older tag.
			c, err = kafka.Committed{ChangelogOffset: -1}, nil
		default:
			c, err = s.pub.Publish(ctx, b)
		}
	}
	if len(o.Changelog) == 0 {
		return nil
	}
	if err := s.eng.Persist(o.Partition, o.ID, engine.SnapshotTag{Offset: c.ChangelogOffset, Time: c.ChangelogTime}); err != nil {
		return fmt.Errorf("serve: partition %d: %w", o.Partition, err)
	}
	return nil
}

// waitKafka probes the brokers. When none answers, it waits until one
// does (or ctx is done) and returns true; when they answer it returns
// false at once: a failure seen meanwhile has another cause.
func (s *server) waitKafka(ctx context.Context) bool {
	if s.health == nil || s.health.check(ctx) == nil {
		return false
	}
	_ = s.health.waitUp(ctx) // only ctx ends it early; the caller checks ctx
	return true
}

// flushDefinitionOutbox publishes dead letters of definition records when
// this instance owns member partition 0 (one instance publishes them, not
// every instance that reads the definitions); otherwise it drops them.
// Until the first assignment they wait.
func (s *server) flushDefinitionOutbox(ctx context.Context) error {
	s.mu.Lock()
	anyOwned, owner := len(s.owned) > 0, s.owned[0]
	s.mu.Unlock()
	if !anyOwned {
		return nil
	}
	pending, err := s.eng.Pending(engine.DefPartition)
	if err != nil || len(pending) == 0 {
		return err
	}
	if owner {
		// The marker of the definitions pseudo-partition counts definitions
		// offsets (+1), not outbox ids, so it means the same on every
		// instance: what another owner published is not published again.
		if _, ok := s.pub.Published(engine.DefPartition); !ok {
			marker, err := s.pub.Acquire(ctx, engine.DefPartition)
			if err != nil {
				return err
			}
			s.defDLThrough = marker.OutboxID
		}
		for _, o := range pending {
			var dls []engine.DeadLetter
			through := s.defDLThrough
			for _, d := range o.DeadLetters {
				if next := uint64(d.Offset) + 1; next > s.defDLThrough {
					dls, through = append(dls, d), max(through, next)
				}
			}
			if len(dls) == 0 {
				continue
			}
			if _, err := s.pub.Publish(ctx, kafka.Batch{Partition: o.Partition, DeadLetters: dls, OutboxID: through}); err != nil {
				s.pub.Release(engine.DefPartition)
				return fmt.Errorf("serve: publishing definition dead letters: %w", err)
			}
			s.defDLThrough = through
		}
	}
	return s.eng.Ack(engine.DefPartition, pending[len(pending)-1].ID)
}

// processAll processes records in batches of BatchSize and publishes each
// batch's output.
func (s *server) processAll(ctx context.Context, recs []engine.Record) error {
	for i := 0; i < len(recs); i += s.cfg.BatchSize {
		batch := recs[i:min(i+s.cfg.BatchSize, len(recs))]
		res, err := s.process(ctx, batch)
		if err != nil {
			return err
		}
		if err := s.publish(ctx, res); err != nil {
			return err
		}
	}
	return nil
}

// process processes a batch and tells the HTTP API which definitions the
// engine just committed (writes wait for them).
func (s *server) process(ctx context.Context, recs []engine.Record) (*engine.Result, error) {
	res, err := s.eng.Process(ctx, recs)
	if err != nil {
		return nil, err
	}
	if s.api != nil {
		s.api.Applied(recs, res)
	}
	return res, nil
}

// groupErrorFatal reports the consumer group errors that rejoining cannot
// cure: configuration and authorization problems.
func groupErrorFatal(err error) bool {
	for _, e := range []error{kerr.GroupAuthorizationFailed, kerr.TopicAuthorizationFailed, kerr.InvalidGroupID, kerr.InvalidSessionTimeout} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
