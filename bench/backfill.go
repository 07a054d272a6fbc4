package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/state"
)

// backfill creates two groups over the state file mode left: one whose
// rule the posting lists narrow, one that needs every member evaluated.
func (r *runner) backfill(ctx context.Context) error {
	st, err := state.Open(filepath.Join(r.dir, "process"), state.Options{})
	if err != nil {
		return err
	}
	defer func() { _ = st.Close() }()
	reg := prometheus.NewRegistry()
	cfg := engine.DefaultConfig()
	cfg.Registerer = reg
	eng, err := engine.New(st, cfg)
	if err != nil {
		return err
	}
	ack := func(res *engine.Result) error {
		for _, o := range res.Outbox {
			if err := eng.Ack(o.Partition, o.ID); err != nil {
				return err
			}
		}
		return nil
	}
	res, err := eng.Assign(ctx, []int32{0})
	if err != nil {
		return err
	}
	if err := ack(res); err != nil {
		return err
	}
	indexed, scan := r.comm.BackfillDefinitions()
	off := int64(r.res.Details.Definitions + r.res.Details.LoadRecords + r.res.Events + 10)
	one := func(rec Record) (time.Duration, int, int, error) {
		before := counterValue(reg, "smartgroups_backfill_members_total")
		t := time.Now()
		res, err := eng.Process(ctx, []engine.Record{rec.EngineRecord(off)})
		d := time.Since(t)
		off++
		if err != nil {
			return 0, 0, 0, err
		}
		if len(res.DeadLetters) > 0 {
			return 0, 0, 0, fmt.Errorf("backfill group rejected: %s", res.DeadLetters[0].Reason)
		}
		return d, int(counterValue(reg, "smartgroups_backfill_members_total") - before), len(res.Events), ack(res)
	}
	dd := &r.res.Details
	dd.BackfillSpotMembers = r.comm.SpotMembers(0)
	if dd.BackfillIndexed, dd.BackfillIndexedEvals, dd.BackfillIndexedEvents, err = one(indexed); err != nil {
		return err
	}
	if dd.BackfillScan, dd.BackfillScanEvals, dd.BackfillScanEvents, err = one(scan); err != nil {
		return err
	}
	r.res.BackfillMembersPerSec = float64(dd.BackfillSpotMembers) / dd.BackfillIndexed.Seconds()
	r.res.BackfillScanMembersPerSec = float64(dd.BackfillSpotMembers) / dd.BackfillScan.Seconds()
	r.log("backfill over %d members: indexed %s (%d evaluated, %d added), scan %s (%d evaluated, %d added)",
		dd.BackfillSpotMembers, dd.BackfillIndexed.Round(time.Microsecond), dd.BackfillIndexedEvals, dd.BackfillIndexedEvents,
		dd.BackfillScan.Round(time.Microsecond), dd.BackfillScanEvals, dd.BackfillScanEvents)
	return nil
}
