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
	naiveModel *Naive
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

	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"generate", r.generate},
		{"broker", r.broker},
		{"serve-load", r.serveLoad},
		{"produce-live", r.produceLive},
		{"raw", r.rawConsume},
		{"process", r.process},
		{"backfill", r.backfill},
		{"naive", r.naive},
		{"serve", r.serve},
	}
	switch {
	case o.LoadOnly:
		steps = steps[:3]
	case o.ServeOnly:
		kept := steps[:0]
		for _, s := range steps {
			if s.name != "process" && s.name != "backfill" && s.name != "naive" {
				kept = append(kept, s)
			}
		}
		steps = kept
	}
	if !o.LoadOnly && o.Postgres != "" {
		steps = append(steps, struct {
			name string
			fn   func(context.Context) error
		}{"postgres", r.postgres})
	}
	defer r.closeBroker()
	for _, s := range steps {
		// Give back what earlier phases freed, so that each phase's peak
		// is its own.
		debug.FreeOSMemory()
		resetPeakRSS()
		cpu0 := cpuTime()
		err := s.fn(ctx)
		d.PhaseCPU[s.name] = cpuTime() - cpu0
		if err != nil {
			return r.res, fmt.Errorf("bench: %s: %w", s.name, err)
		}
		if p := peakRSS(); p > 0 {
			if phasePeakRSS {
				d.PhasePeakRSS[s.name] = p
			}
			r.res.PeakRSSBytes = max(r.res.PeakRSSBytes, p)
		}
	}
	d.Duration = time.Since(start)
	d.LoadAvgEnd = loadAvg()
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
	d.Definitions, d.LoadRecords = ds.Definitions, ds.LoadRecords
	d.InputBytes = fileSize(r.load) + fileSize(r.live)
	d.Generate = time.Since(t)
	r.log("generated %d definitions, %d initial-load and %d live records (%d members, %d groups, %.1f MiB) in %s",
		ds.Definitions, ds.LoadRecords, ds.LiveRecords, r.o.Community.Members, r.o.Community.Groups,
		float64(d.InputBytes)/(1<<20), d.Generate.Round(time.Millisecond))
	return nil
}

func (r *runner) broker(ctx context.Context) error {
	brokers := r.o.Brokers
	if len(brokers) == 0 {
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
		// default; at full size a pass over tens of GiB of logs blocks
		// every client for minutes (group sessions time out), which a real
		// broker's log cleaner, running beside request handling, does not
		// do. The run's topics are left uncompacted.
		ec.Opts = append(ec.Opts, kfake.BrokerConfigs(map[string]string{"log.cleaner.backoff.ms": "8640000000"}))
		emb, err := kafka.StartEmbedded(ec)
		if err != nil {
			return err
		}
		r.emb = emb
		brokers = []string{emb.Addr()}
		r.res.Details.Embedded = true
	}
	run := strconv.FormatInt(time.Now().UnixNano()%1e10, 36)
	kc := kafka.DefaultConfig()
	kc.Brokers = brokers
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
	r.log("produced %d definitions and initial-load records to %s in %s (%.0f records/s)", n, strings.Join(brokers, ","),
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
