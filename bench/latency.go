package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/smartgroups/smartgroups/engine/rule"
)

// maxCatchup bounds the wait for serve to fire the timers overdue at its
// start on the wall clock.
const maxCatchup = 15 * time.Minute

// timersCaughtUp waits until serve, just restarted on the wall clock, has
// fired the timers made overdue by the jump from the event clock of the
// throughput phase (its timer lag is 0 on two scrapes a second apart,
// a second or more after its start), so that the latency phase measures
// the steady state rather than that catch-up, which is reported apart
// (latency_timer_catchup_seconds; -1 when it took longer than maxCatchup,
// and the latency phase then runs anyway).
func (r *runner) timersCaughtUp(ctx context.Context, in *serveInstance) error {
	start := time.Now()
	zero := 0
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
		s, err := scrapeMetrics(ctx, in.metrics)
		if err != nil {
			return err
		}
		if s.timerLag == 0 {
			zero++
		} else {
			zero = 0
		}
		took := time.Since(start)
		if zero == 2 {
			r.res.LatencyCatchupSeconds = (took - time.Second).Seconds()
			r.log("latency: serve on the wall clock fired the timers overdue at its start in %s", (took - time.Second).Round(100*time.Millisecond))
			return nil
		}
		if took > maxCatchup {
			r.res.LatencyCatchupSeconds = -1
			r.log("latency: serve's timers still %.0f s behind after %s; measuring anyway", s.timerLag, maxCatchup)
			return nil
		}
	}
}

// latency offers live records at half the measured serve throughput and
// times each from its production to the first membership event it caused,
// as seen by a read_committed consumer of the output topic.
func (r *runner) latency(ctx context.Context, in *serveInstance) error {
	rate := r.res.EventsPerSec / 2
	if rate < 1 || math.IsInf(rate, 0) || math.IsNaN(rate) {
		rate = 1
	}
	admCl, err := r.client()
	if err != nil {
		return err
	}
	ends, err := kadm.NewClient(admCl).ListEndOffsets(ctx, r.kc.MembershipsTopic())
	admCl.Close()
	if err != nil {
		return err
	}
	parts := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) { parts[o.Partition] = kgo.NewOffset().At(o.Offset) })
	cons, err := r.client(kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{r.kc.MembershipsTopic(): parts}),
		kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		return err
	}
	defer cons.Close()
	prod, err := r.client(kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)), kgo.ProducerLinger(0))
	if err != nil {
		return err
	}
	defer prod.Close()

	var mu sync.Mutex
	pending := map[string]time.Time{} // spot/member/ts -> produced
	var samples []float64
	cctx, ccancel := context.WithCancel(ctx)
	defer ccancel()
	consDone := make(chan struct{})
	go func() {
		var ev struct {
			Spot, Member, TS string
		}
		for {
			fs := cons.PollFetches(cctx)
			if cctx.Err() != nil {
				close(consDone)
				return
			}
			now := time.Now()
			fs.EachRecord(func(rec *kgo.Record) {
				if json.Unmarshal(rec.Value, &ev) != nil {
					return
				}
				t, err := rule.ParseTime(ev.TS)
				if err != nil {
					return
				}
				k := ev.Spot + "/" + ev.Member + "/" + strconv.FormatInt(t, 10)
				mu.Lock()
				if p, ok := pending[k]; ok {
					samples = append(samples, float64(now.Sub(p))/float64(time.Millisecond))
					delete(pending, k)
				}
				mu.Unlock()
			})
		}
	}()

	base, err := scrapeMetrics(ctx, in.metrics)
	if err != nil {
		return err
	}
	r.log("latency: offering %.0f records/s for %s", rate, r.o.LatencyDuration)
	var produceErr atomic.Value
	start := time.Now()
	sent := 0
	tick := time.NewTicker(2 * time.Millisecond)
	for now := range tick.C {
		el := now.Sub(start)
		if el >= r.o.LatencyDuration {
			break
		}
		due := int(rate*el.Seconds()) - sent
		for ; due > 0; due-- {
			rec, spot, member, ts := r.comm.LiveKey(time.Now().UnixMilli())
			mu.Lock()
			pending[spot+"/"+member+"/"+strconv.FormatInt(ts, 10)] = time.Now()
			mu.Unlock()
			prod.Produce(ctx, &kgo.Record{Topic: r.kc.Topic(rec.Kind), Key: []byte(rec.Key), Value: rec.Value},
				func(_ *kgo.Record, err error) {
					if err != nil {
						produceErr.Store(err)
					}
				})
			sent++
		}
	}
	tick.Stop()
	if err := prod.Flush(ctx); err != nil {
		return err
	}
	if e, ok := produceErr.Load().(error); ok {
		return fmt.Errorf("produce: %w", e)
	}
	// Wait for serve to consume everything offered, then for the output.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		s, err := scrapeMetrics(ctx, in.metrics)
		if err != nil {
			return err
		}
		if s.consumed-base.consumed >= float64(sent) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("serve consumed %.0f of the %d latency records in 2 minutes", s.consumed-base.consumed, sent)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second)
	ccancel()
	<-consDone
	mu.Lock()
	defer mu.Unlock()
	dd := &r.res.Details
	dd.LatencyOffered, dd.LatencyRecords, dd.LatencySamples, dd.LatencyDropped = rate, sent, len(samples), len(pending)
	dd.LatencyDuration = r.o.LatencyDuration
	if len(samples) == 0 {
		r.res.LatencyP50Ms, r.res.LatencyP99Ms = -1, -1
		r.log("latency: no record of the %d offered caused a membership event", sent)
		return nil
	}
	slices.Sort(samples)
	r.res.LatencyP50Ms = quantile(samples, 0.50)
	r.res.LatencyP99Ms = quantile(samples, 0.99)
	dd.LatencyMaxMs = samples[len(samples)-1]
	r.log("latency: %d records offered, %d caused events: p50 %.1f ms, p99 %.1f ms, max %.1f ms", sent, len(samples),
		r.res.LatencyP50Ms, r.res.LatencyP99Ms, dd.LatencyMaxMs)
	return nil
}

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
