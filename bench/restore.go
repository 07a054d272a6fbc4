package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// takeover is how a serve instance took over every partition.
type takeover struct {
	// took is from the instance's start to the first scrape that saw it
	// own every member with no restore running and /readyz answering.
	took time.Duration
	// records are the changelog records its restores applied.
	records float64
}

// restore measures how fast a new owner takes over serve's partitions
// once serve has stopped: first a serve on an empty data directory (the
// same consumer group, transactional ids, topics and broker: a node
// replaced with an empty disk) restores every partition from the whole
// changelog; then serve restarted on the throughput phase's data
// directory restores from its local snapshot and the changelog after it.
// members are the live members serve owned when it stopped.
func (r *runner) restore(ctx context.Context, members float64) error {
	if members <= 0 {
		return fmt.Errorf("serve reported %.0f live members (smartgroups_members): nothing to restore", members)
	}
	dd := &r.res.Details
	dir := filepath.Join(r.dir, "serve-restore")
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	full, err := r.takeOver(ctx, dir, members)
	if err != nil {
		return fmt.Errorf("restore on an empty data dir: %w", err)
	}
	dd.RestoreMembers, dd.Restore, dd.RestoreRecords = int64(members), full.took, full.records
	r.res.RestoreSeconds = full.took.Seconds()
	r.res.RestoreMembersPerSec = members / full.took.Seconds()
	r.log("restore on an empty data dir: %.0f members, %.0f changelog records in %s: %.0f members/s",
		members, full.records, full.took.Round(time.Millisecond), r.res.RestoreMembersPerSec)
	again, err := r.takeOver(ctx, filepath.Join(r.dir, "serve"), members)
	if err != nil {
		return fmt.Errorf("restart on the data dir: %w", err)
	}
	dd.RestartRestore, dd.RestartRestoreRecords = again.took, again.records
	r.res.RestartRestoreSeconds = again.took.Seconds()
	r.log("restart on the data dir: %.0f changelog records in %s", again.records, again.took.Round(time.Millisecond))
	return nil
}

// takeOver starts serve on dataDir with the throughput clock, waits until
// it owns the given number of members with every restore finished, and
// stops it.
func (r *runner) takeOver(ctx context.Context, dataDir string, members float64) (takeover, error) {
	start := time.Now()
	in, stop, err := r.startServeIn(ctx, r.o.ServeClock, dataDir)
	if err != nil {
		return takeover{}, err
	}
	defer func() { _ = stop() }()
	var t takeover
	const every = 25 * time.Millisecond
	// Give up only when the restore stops making progress.
	const stall = 5 * time.Minute
	var prev scrape
	lastChange := time.Now()
	for {
		s, err := scrapeMetrics(ctx, in.metrics)
		if err != nil {
			return takeover{}, err
		}
		if s.members >= members && s.restoresRunning == 0 && ready(ctx, readyURL(in.metrics)) {
			// It finished between the last scrape and this one.
			end := s.at
			if !prev.at.IsZero() {
				end = prev.at.Add(s.at.Sub(prev.at) / 2)
			}
			t.took, t.records = end.Sub(start), s.restoreRecords
			break
		}
		if s.members != prev.members || s.restoreRecords != prev.restoreRecords || s.restoresRunning != prev.restoresRunning {
			lastChange = s.at
		}
		if time.Since(lastChange) > stall {
			return takeover{}, fmt.Errorf("serve owns %.0f of %.0f members, %.0f restores running, and made no progress for %s",
				s.members, members, s.restoresRunning, stall)
		}
		prev = s
		select {
		case err := <-in.done:
			in.done <- err
			return takeover{}, fmt.Errorf("serve stopped: %w", err)
		case <-ctx.Done():
			return takeover{}, ctx.Err()
		case <-time.After(every):
		}
	}
	if err := stop(); err != nil {
		return takeover{}, fmt.Errorf("serve: %w", err)
	}
	return t, nil
}

// readyURL is the /readyz address beside a /metrics address.
func readyURL(metrics string) string {
	return metrics[:len(metrics)-len("/metrics")] + "/readyz"
}
