package serve

import (
	"context"
	"log/slog"
	"time"

	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/state"
)

// sizeKeyframe is how often a size point is written even when the count
// did not change, so that a reader finds a recent point for every group
// and partition (the reader carries a point forward for this long).
const sizeKeyframe = time.Hour

// sizeSampler records the member count of every group, per owned input
// partition, once per interval (the series of GET …/groups/{id}/size): a
// point is written when the count changed since the last one written, and
// at least once an hour; points older than the retention are deleted once
// an hour. Each instance records the partitions it owns, and a read sums
// the partitions of every instance (httpapi).
type sizeSampler struct {
	eng       *engine.Engine
	st        *state.Store
	log       *slog.Logger
	interval  time.Duration
	retention time.Duration

	last      map[sizeKey]uint64
	lastFrame int64 // keyframe number (unix time / sizeKeyframe) of the last keyframe
	lastSweep int64
}

type sizeKey struct {
	spot, group string
	part        int32
}

func (z *sizeSampler) run(ctx context.Context) {
	t := time.NewTicker(z.interval)
	defer t.Stop()
	for {
		if err := z.sample(time.Now()); err != nil && ctx.Err() == nil {
			z.log.Warn("recording group sizes", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sample records one point per group and owned partition whose count
// changed (all of them at a keyframe).
func (z *sizeSampler) sample(now time.Time) error {
	if z.last == nil {
		z.last = map[sizeKey]uint64{}
	}
	minute := now.Truncate(time.Minute)
	frame := now.Unix() / int64(sizeKeyframe/time.Second)
	keyframe := frame != z.lastFrame
	var spots []string
	z.eng.ViewDefs(func(d *engine.Defs) { spots = d.Spots() })
	seen := map[sizeKey]bool{}
	var points []state.SizePoint
	for _, p := range z.eng.Owned() {
		for _, spot := range spots {
			counts, err := z.eng.GroupCounts([]int32{p}, spot)
			if err != nil {
				continue // a partition being restored: next time
			}
			for g, n := range counts {
				k := sizeKey{spot, g, p}
				seen[k] = true
				if old, ok := z.last[k]; ok && old == uint64(n) && !keyframe {
					continue
				}
				z.last[k] = uint64(n)
				points = append(points, state.SizePoint{Spot: spot, Group: g, Partition: p, TS: minute.UnixMilli(), Members: uint64(n)})
			}
		}
	}
	for k := range z.last {
		if !seen[k] {
			// A partition moved away (written again in full when it
			// comes back) or a group deleted.
			delete(z.last, k)
		}
	}
	if err := z.st.WriteSizes(points); err != nil {
		return err
	}
	z.lastFrame = frame
	if frame != z.lastSweep {
		z.lastSweep = frame
		return z.st.DeleteSizesBefore(now.Add(-z.retention).UnixMilli())
	}
	return nil
}
