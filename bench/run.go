package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/smartgroups/smartgroups/connectors/file"
	"github.com/smartgroups/smartgroups/connectors/kafka"
	"github.com/smartgroups/smartgroups/engine"
)

type runner struct {
	o         Options
	res       *Result
	dir       string
	load      string // definitions and initial load, NDJSON
	live      string // live stream, NDJSON
	comm      *Community
	liveStart map[string]map[int32]int64 // member topic offsets where the live stream starts
	kc        kafka.Config
	log       func(format string, args ...any)

	emb        *kafka.Embedded
	brokers    []string
	naiveModel *Naive

	// keepFinal makes file mode, the naive evaluator and serve keep the
	// memberships they end the live stream with ("<spot>/<group>/<member>"),
	// for the test that they all did the same work.
	keepFinal                            bool
	finalProcess, finalNaive, finalServe map[string]bool
}

// Run generates the community, loads it and measures every mode on the
// same data. See the package documentation for the method.
func Run(ctx context.Context, o Options) (*Result, error) {
	o.normalize()
	if err := o.Community.Validate(); err != nil {
		return nil, err
	}
	if o.ServeOnly && o.Postgres != "" {
		return nil, errors.New("bench: the PostgreSQL comparator needs the naive evaluator, which ServeOnly skips")
	}
	start := time.Now()
	r := &runner{o: o, res: &Result{}}
	r.res.Details.Started = start
	r.res.Details.PhasePeakRSS = map[string]int64{}
	r.res.Details.PhaseCPU = map[string]time.Duration{}
	r.res.Details.LoadAvgStart = loadAvg()
	r.log = func(format string, args ...any) {
		fmt.Fprintf(o.Log, "[bench %6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	dir := o.DataDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "smartgroups-bench-")
		if err != nil {
			return nil, fmt.Errorf("bench: temp dir: %w", err)
		}
		defer func() { _ = os.RemoveAll(tmp) }()
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("bench: data dir: %w", err)
	}
	r.dir = dir
	d := &r.res.Details
	d.Spots, d.Partitions, d.BatchSize = o.Community.Spots, int(o.Partitions), o.BatchSize
	d.ServeClock = "wall"
	if o.ServeClock == engine.ClockEvent {
		d.ServeClock = "event"
	}
	d.GoMaxProcs, d.NumCPU = runtime.GOMAXPROCS(0), runtime.NumCPU()
	r.res.Members, r.res.Groups, r.res.Events = o.Community.Members, o.Community.Groups, o.Community.Events

	type step struct {
		name string
		fn   func(context.Context) error
	}
	setup := []step{{"generate", r.generate}, {"broker", r.startBroker}}
	phases := []step{
		{"topics", r.topics},
		{"serve-load", r.serveLoad},
		{"produce-live", r.produceLive},
		{"raw", r.rawConsume},
		{"process", r.process},
		{"backfill", r.backfill},
		{"naive", r.naive},
		{"serve", r.serve},
		{"pipe", r.pipe},
	}
	switch {
	case o.LoadOnly:
		phases = phases[:2]
	case o.ServeOnly:
		phases = slices.DeleteFunc(phases, func(s step) bool {
			return s.name == "process" || s.name == "backfill" || s.name == "naive"
		})
	}
	if !o.LoadOnly && o.Postgres != "" {
		phases = append(phases, step{"postgres", r.postgres})
	}
	defer r.closeBroker()
	runStep := func(s step) error {
		// Give back what earlier phases freed, so that each phase's peak
		// is its own.
		debug.FreeOSMemory()
		resetPeakRSS()
		cpu0 := cpuTime()
		err := s.fn(ctx)
		d.PhaseCPU[s.name] = cpuTime() - cpu0
		if err != nil {
			return fmt.Errorf("bench: %s: %w", s.name, err)
		}
		if p := peakRSS(); p > 0 {
			if phasePeakRSS {
				d.PhasePeakRSS[s.name] = p
			}
			r.res.PeakRSSBytes = max(r.res.PeakRSSBytes, p)
		}
		return nil
	}
	for _, s := range setup {
		if err := runStep(s); err != nil {
			return r.res, err
		}
	}
	var reps []Result
	for rep := 1; rep <= o.Repeat; rep++ {
		if o.Repeat > 1 {
			r.log("repetition %d of %d", rep, o.Repeat)
		}
		for _, dir := range []string{"serve", "serve-restore", "process"} {
			if err := os.RemoveAll(filepath.Join(r.dir, dir)); err != nil {
				return r.res, fmt.Errorf("bench: %w", err)
			}
		}
		for _, s := range phases {
			if rep > 1 && (s.name == "backfill" || s.name == "postgres") {
				continue // measured once: they do not read the stream
			}
			if err := runStep(s); err != nil {
				return r.res, err
			}
		}
		reps = append(reps, *r.res)
	}
	r.res.median(reps)
	d.LoadAvgEnd = loadAvg()
	r.res.LoadAverage = max(loadAvg1(d.LoadAvgStart), loadAvg1(d.LoadAvgEnd))
	d.Duration = time.Since(start)
	r.log("done in %s", d.Duration.Round(time.Millisecond))
	return r.res, nil
}

func (r *runner) generate(context.Context) error {
	t := time.Now()
	r.comm = NewCommunity(r.o.Community)
	r.load, r.live = filepath.Join(r.dir, "load.ndjson"), filepath.Join(r.dir, "live.ndjson")
	lf, err := os.Create(r.load)
	if err != nil {
		return err
	}
	vf, err := os.Create(r.live)
	if err != nil {
		_ = lf.Close()
		return err
	}
	ds, err := r.comm.WriteDataset(lf, vf)
	for _, f := range []*os.File{lf, vf} {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return err
	}
	d := &r.res.Details
	d.Definitions, d.LoadRecords, d.HistoryRecords = ds.Definitions, ds.LoadRecords, ds.History
	d.TemplateGroups = map[string]int{}
	for s := range r.comm.spots {
		for i := 0; i < r.comm.groupsOf[s]; i++ {
			d.TemplateGroups[r.comm.Template(i)]++
		}
	}
	d.InputBytes = fileSize(r.load) + fileSize(r.live)
	d.Generate = time.Since(t)
	r.log("generated %d definitions, %d initial-load and %d live records (%d members, %d groups, %.1f MiB) in %s",
		ds.Definitions, ds.LoadRecords, ds.LiveRecords, r.o.Community.Members, r.o.Community.Groups,
		float64(d.InputBytes)/(1<<20), d.Generate.Round(time.Millisecond))
	return nil
}

// startBroker starts the embedded broker unless brokers are given.
func (r *runner) startBroker(context.Context) error {
	r.brokers = r.o.Brokers
	if len(r.brokers) > 0 {
		return nil
	}
	ec := kafka.EmbeddedConfig{Addr: "127.0.0.1:0"}
	if !r.o.BrokerInMemory {
		// Logs in files (page cache, no fsync): a large run's topics
		// would not fit in memory next to everything else.
		ec.DataDir = filepath.Join(r.dir, "broker")
		if err := os.RemoveAll(ec.DataDir); err != nil {
			return err
		}
		r.res.Details.BrokerOnDisk = true
	}
	// The embedded broker compacts inside its request loop, hourly by
	// default; at full size a pass over tens of GiB of logs blocks every
	// client for minutes (group sessions time out), which a real broker's
	// log cleaner, running beside request handling, does not do. The
	// run's topics are left uncompacted.
	ec.Opts = append(ec.Opts, kfake.BrokerConfigs(map[string]string{"log.cleaner.backoff.ms": "8640000000"}))
	emb, err := kafka.StartEmbedded(ec)
	if err != nil {
		return err
	}
	r.emb = emb
	r.brokers = []string{emb.Addr()}
	r.res.Details.Embedded = true
	return nil
}

// topics creates a fresh set of topics (a new prefix, consumer group and
// transactional ids: each repetition is a new deployment) and produces the
// definitions and the initial load.
func (r *runner) topics(ctx context.Context) error {
	run := strconv.FormatInt(time.Now().UnixNano()%1e10, 36)
	kc := kafka.DefaultConfig()
	kc.Brokers = r.brokers
	kc.TopicPrefix = "smartgroups.bench-" + run + "."
	kc.GroupID = "smartgroups-bench-" + run
	kc.TransactionalIDPrefix = "smartgroups-bench-" + run + "-txn-"
	kc.Partitions = r.o.Partitions
	r.kc = kc
	cl, err := r.producer()
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := kafka.EnsureTopics(ctx, kadm.NewClient(cl), kc); err != nil {
		return err
	}
	n, d, err := r.produceFile(ctx, cl, r.load)
	if err != nil {
		return err
	}
	r.log("produced %d definitions and initial-load records to %s in %s (%.0f records/s)", n, strings.Join(r.brokers, ","),
		d.Round(time.Millisecond), float64(n)/d.Seconds())
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, kc.MemberTopics()...)
	if err != nil {
		return err
	}
	r.liveStart = map[string]map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if r.liveStart[o.Topic] == nil {
			r.liveStart[o.Topic] = map[int32]int64{}
		}
		r.liveStart[o.Topic][o.Partition] = o.Offset
	})
	return nil
}

func (r *runner) closeBroker() {
	if r.emb != nil {
		_ = r.emb.Close()
		r.emb = nil
		if r.res.Details.BrokerOnDisk {
			_ = os.RemoveAll(filepath.Join(r.dir, "broker"))
		}
	}
}

// client returns a client of the run's brokers with extra options.
func (r *runner) client(extra ...kgo.Opt) (*kgo.Client, error) {
	opts, err := r.kc.ClientOpts()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return cl, nil
}

func (r *runner) producer() (*kgo.Client, error) {
	return r.client(kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.ProducerLinger(2*time.Millisecond), kgo.MaxBufferedRecords(50_000))
}

// produceFile produces every line of an NDJSON input file.
func (r *runner) produceFile(ctx context.Context, cl *kgo.Client, path string) (int, time.Duration, error) {
	t := time.Now()
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), file.MaxLineBytes)
	var produceErr atomic.Value
	n := 0
	for sc.Scan() {
		rec := file.Decode(sc.Bytes(), int64(n))
		if rec.Err != "" {
			return n, 0, fmt.Errorf("%s: %s", path, rec.Err)
		}
		cl.Produce(ctx, &kgo.Record{Topic: r.kc.Topic(rec.Kind), Key: rec.Key, Value: rec.Value},
			func(_ *kgo.Record, err error) {
				if err != nil {
					produceErr.Store(err)
				}
			})
		n++
	}
	if err := sc.Err(); err != nil {
		return n, 0, err
	}
	if err := cl.Flush(ctx); err != nil {
		return n, 0, err
	}
	if e, ok := produceErr.Load().(error); ok {
		return n, 0, fmt.Errorf("produce: %w", e)
	}
	d := time.Since(t)
	r.res.Details.Produce += d
	return n, d, nil
}

// produceLive produces the live stream while serve is stopped, so that
// serve then meets it as a backlog.
func (r *runner) produceLive(ctx context.Context) error {
	cl, err := r.producer()
	if err != nil {
		return err
	}
	defer cl.Close()
	n, d, err := r.produceFile(ctx, cl, r.live)
	if err != nil {
		return err
	}
	r.log("produced %d live records in %s (%.0f records/s)", n, d.Round(time.Millisecond), float64(n)/d.Seconds())
	return nil
}
