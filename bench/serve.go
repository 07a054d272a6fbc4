package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/internal/serve"
)

type serveInstance struct {
	cancel  context.CancelFunc
	done    chan error
	metrics string
	events  atomic.Int64
	// lastRecEvNs is when the last batch with events caused by records
	// (not by timers) was committed: with the wall clock, timers keep
	// firing and committing after the stream has been processed. Only an
	// in-process serve reports it; a serve process is followed through
	// its metrics.
	lastRecEvNs atomic.Int64
	// pid is the serve process's id (0: in this process).
	pid int
}

// startServe runs serve with the given clock on the benchmark's topics and
// state directory, and waits until it is ready: as a separate process when
// Options.ServeCommand is set (so its memory is its own), else in this
// process.
func (r *runner) startServe(ctx context.Context, clock engine.ClockMode) (*serveInstance, func() error, error) {
	return r.startServeIn(ctx, clock, filepath.Join(r.dir, "serve"))
}

// startServeIn is startServe with the given data directory.
func (r *runner) startServeIn(ctx context.Context, clock engine.ClockMode, dataDir string) (*serveInstance, func() error, error) {
	if len(r.o.ServeCommand) > 0 {
		return r.startServeProcess(ctx, clock, dataDir)
	}
	cfg := serve.DefaultConfig()
	cfg.Kafka = r.kc
	cfg.DataDir = dataDir
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Clock = clock
	cfg.BatchSize = r.o.BatchSize
	if r.o.StateCacheBytes > 0 {
		cfg.StateCacheBytes = r.o.StateCacheBytes
	}
	cfg.Logger = slog.New(slog.NewTextHandler(r.o.Log, &slog.HandlerOptions{Level: slog.LevelWarn}))
	in := &serveInstance{done: make(chan error, 1)}
	cfg.OnEvents = func(evs []engine.Event) {
		now := time.Now().UnixNano()
		in.events.Add(int64(len(evs)))
		for _, ev := range evs {
			if ev.Reason != engine.ReasonTime {
				in.lastRecEvNs.Store(now)
				break
			}
		}
	}
	ready := make(chan serve.Ready, 1)
	cfg.OnReady = func(rd serve.Ready) { ready <- rd }
	sctx, cancel := context.WithCancel(ctx)
	in.cancel = cancel
	go func() { in.done <- serve.Run(sctx, cfg) }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-in.done
	}
	select {
	case rd := <-ready:
		in.metrics = "http://" + rd.HTTPAddr + "/metrics"
		return in, stop, nil
	case err := <-in.done:
		cancel()
		return nil, nil, fmt.Errorf("serve exited before ready: %w", err)
	case <-time.After(10 * time.Minute):
		_ = stop()
		return nil, nil, errors.New("serve not ready after 10 minutes")
	}
}

// serveLoad runs serve over the definitions and the initial load, then
// stops it: the live stream is produced while it is down.
func (r *runner) serveLoad(ctx context.Context) error {
	stopProfile, err := startCPUProfile(r.o.LoadCPUProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	in, stop, err := r.startServe(ctx, r.o.ServeClock)
	if err != nil {
		return err
	}
	defer func() { _ = stop() }()
	c, err := r.caughtUp(ctx, in, float64(r.res.Details.LoadRecords), "")
	if err != nil {
		return err
	}
	d := c.total
	stopProfile()
	r.res.Details.ServeLoad = d
	r.log("serve: initial load of %d records in %s: %.0f records/s, %d membership events", r.res.Details.LoadRecords,
		d.Round(time.Millisecond), float64(r.res.Details.LoadRecords)/d.Seconds(), in.events.Load())
	return stop()
}

// serve restarts serve over the live backlog and measures its
// throughput with the throughput clock (the event clock by default, as
// file mode and the naive evaluator), then how fast a new owner restores
// its partitions (see restore), then restarts it with the wall clock for
// the latency at a fixed load, and measures the state size after
// shutdown.
func (r *runner) serve(ctx context.Context) error {
	in, stop, err := r.startServe(ctx, r.o.ServeClock)
	if err != nil {
		return err
	}
	defer func() { _ = stop() }()
	// serve's counter starts at zero and the live records are all it has
	// left to read; it may have consumed some before the first scrape.
	c, err := r.caughtUp(ctx, in, float64(r.res.Events), r.o.CPUProfile)
	if err != nil {
		return err
	}
	d := c.total
	if r.o.MemProfile != "" && in.pid == 0 {
		if err := writeHeapProfile(r.o.MemProfile); err != nil {
			return err
		}
	}
	dd := &r.res.Details
	dd.Serve, dd.ServeEvents = d, in.events.Load()
	r.res.EventsPerSec = float64(r.res.Events) / d.Seconds()
	r.res.EventsPerRecord = float64(dd.ServeEvents) / float64(r.res.Events)
	dd.ServeFirstTenth, dd.ServeLastTenth = c.firstTenth, c.lastTenth
	r.res.ServeLastTenthOverFirst = c.stability()
	if in.pid != 0 {
		dd.ServePeakRSS = processPeakRSS(in.pid)
		if dd.ServePeakRSS > 0 {
			r.res.ServeRSSBytesPerMember = float64(dd.ServePeakRSS) / float64(r.res.Members)
		}
	}
	r.log("serve (Kafka, exactly-once): %d live records in %s: %.0f records/s, %d membership events (%.2f per record); last tenth / first tenth %.2f", r.res.Events,
		d.Round(time.Millisecond), r.res.EventsPerSec, dd.ServeEvents, r.res.EventsPerRecord, r.res.ServeLastTenthOverFirst)
	// The members a new owner must restore.
	fin, err := scrapeMetrics(ctx, in.metrics)
	if err != nil {
		return err
	}
	if err := stop(); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if r.keepFinal {
		if r.finalServe, err = r.readMemberships(ctx); err != nil {
			return err
		}
	}
	if err := r.restore(ctx, fin.members); err != nil {
		return err
	}
	in, stop, err = r.startServe(ctx, engine.ClockWall)
	if err != nil {
		return err
	}
	defer func() { _ = stop() }()
	if err := r.timersCaughtUp(ctx, in); err != nil {
		return err
	}
	if err := r.latency(ctx, in); err != nil {
		return err
	}
	if err := stop(); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	stateDir := filepath.Join(r.dir, "serve", "state")
	dd.StateBytesAtShutdown = dirSize(stateDir)
	if dd.StateBytes, err = settledSize(stateDir); err != nil {
		return err
	}
	r.res.StateBytesPerMember = float64(dd.StateBytes) / float64(r.res.Members)
	r.log("serve state: %.1f MiB (%.0f bytes per member; %.1f MiB with the write-ahead log left at shutdown)", float64(dd.StateBytes)/(1<<20),
		r.res.StateBytesPerMember, float64(dd.StateBytesAtShutdown)/(1<<20))
	if dd.BrokerBytes = r.brokerBytes(ctx); dd.BrokerBytes != nil {
		r.log("broker: %s", brokerText(dd.BrokerBytes))
	}
	return nil
}

// catchUp is how long serve took over a stream of records: the whole of
// it, and its first and last tenth.
type catchUp struct {
	total                 time.Duration
	firstTenth, lastTenth time.Duration // 0: not measured
}

// stability is the throughput over the last tenth of the stream divided
// by the throughput over the first tenth (NaN when either is unknown).
func (c catchUp) stability() float64 {
	if c.firstTenth <= 0 || c.lastTenth <= 0 {
		return math.NaN()
	}
	// Both tenths hold the same number of records.
	return c.firstTenth.Seconds() / c.lastTenth.Seconds()
}

// crossing finds when a counter scraped now and then first reached a
// value, interpolating linearly between the scrapes around it.
type crossing struct {
	value float64
	at    time.Time // zero until reached
}

// observe takes the counter's move from fromV at from to toV at to.
func (c *crossing) observe(from time.Time, fromV float64, to time.Time, toV float64) {
	if !c.at.IsZero() || toV < c.value {
		return
	}
	f := 1.0
	if toV > fromV {
		f = min(max((c.value-fromV)/(toV-fromV), 0), 1)
	}
	c.at = from.Add(time.Duration(f * float64(to.Sub(from))))
}

// tenthMarks follows a consumed counter to time the first and the last
// tenth of a stream: the instants it reached 10%, 90% and 100% of it.
type tenthMarks [3]crossing

func newTenthMarks(want float64) *tenthMarks {
	return &tenthMarks{{value: want / 10}, {value: want * 9 / 10}, {value: want}}
}

// observe takes the counter's move from fromV at from to toV at to.
func (t *tenthMarks) observe(from time.Time, fromV float64, to time.Time, toV float64) {
	for i := range t {
		t[i].observe(from, fromV, to, toV)
	}
}

// tenths returns the time from first (the first record consumed) to the
// 10% mark and from the 90% mark to the last record; zero when the
// counter has not reached them or they are not in order.
func (t *tenthMarks) tenths(first time.Time) (firstTenth, lastTenth time.Duration) {
	m10, m90, m100 := t[0].at, t[1].at, t[2].at
	if m10.IsZero() || m90.IsZero() || m100.IsZero() || !m10.After(first) || !m100.After(m90) {
		return 0, 0
	}
	return m10.Sub(first), m100.Sub(m90)
}

// caughtUp waits until serve has consumed want member records (its
// counter since start) and the batches holding them are committed, and
// returns the time from the first member record consumed to the last
// output transaction with events caused by records, and the times over
// the first and the last tenth of the records: from the first record
// consumed to the 10% mark, from the 90% mark to the last record
// consumed (serve's consumed counter, interpolated between scrapes, so
// both tenths are timed alike). With the wall clock, timers keep firing and committing after
// the stream is processed, so commits alone never go quiet; timer
// transactions are not counted.
func (r *runner) caughtUp(ctx context.Context, in *serveInstance, want float64, cpuProfile string) (catchUp, error) {
	stopProfile, err := startCPUProfile(cpuProfile)
	if err != nil {
		return catchUp{}, err
	}
	defer stopProfile()
	const every = 25 * time.Millisecond
	// A large run takes hours: give up only when serve stops making
	// progress.
	const stall = 15 * time.Minute
	// The last batch's transactions commit after its records are counted
	// as consumed; a batch takes well under this at every size measured.
	const settle = 3 * time.Second
	prev, err := scrapeMetrics(ctx, in.metrics)
	if err != nil {
		return catchUp{}, err
	}
	start := time.Now()
	var first, lastConsumed, lastChange time.Time
	awaitCommit := false
	marks := newTenthMarks(want)
	if prev.consumed > 0 {
		// Consumption began before the first scrape.
		first, lastConsumed = start, start
		marks.observe(start, prev.consumed, start, prev.consumed)
	}
	for {
		time.Sleep(every)
		if err := ctx.Err(); err != nil {
			return catchUp{}, err
		}
		s, err := scrapeMetrics(ctx, in.metrics)
		if err != nil {
			return catchUp{}, err
		}
		mid := prev.at.Add(s.at.Sub(prev.at) / 2)
		if s.consumed != prev.consumed {
			if first.IsZero() {
				first = mid
			}
			lastConsumed = mid
			// Consumption began at first at the earliest.
			marks.observe(latest(prev.at, first), prev.consumed, s.at, s.consumed)
		}
		if s.commits != prev.commits || s.consumed != prev.consumed {
			lastChange = mid
		}
		if in.pid != 0 {
			// A serve process: its record-caused events are counted when
			// processed; their batch commits at the next commit seen.
			in.events.Store(int64(s.events))
			if s.recordEvents != prev.recordEvents {
				awaitCommit = true
			}
			if awaitCommit && s.commits != prev.commits {
				in.lastRecEvNs.Store(mid.UnixNano())
				awaitCommit = false
			}
		}
		if s.consumed >= want && s.at.Sub(latest(lastConsumed, time.Unix(0, in.lastRecEvNs.Load()))) > settle {
			break
		}
		prev = s
		progress := lastChange
		if progress.IsZero() {
			progress = start
		}
		if time.Since(progress) > stall {
			return catchUp{}, fmt.Errorf("serve consumed %.0f of %.0f records and made no progress for %s", s.consumed, want, stall)
		}
		select {
		case err := <-in.done:
			in.done <- err
			return catchUp{}, fmt.Errorf("serve stopped: %w", err)
		default:
		}
	}
	end := latest(lastConsumed, time.Unix(0, in.lastRecEvNs.Load()))
	if first.IsZero() || !end.After(first) {
		return catchUp{}, errors.New("serve consumed nothing")
	}
	c := catchUp{total: end.Sub(first)}
	c.firstTenth, c.lastTenth = marks.tenths(first)
	return c, nil
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// startCPUProfile starts a CPU profile to path (nothing when path is
// empty) and returns the function that stops it, which may be called more
// than once.
func startCPUProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			_ = f.Close()
		})
	}, nil
}

// writeHeapProfile writes a heap profile of the live objects to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
