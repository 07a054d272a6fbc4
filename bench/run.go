package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/smartgroups/smartgroups/connectors/file"
	"github.com/smartgroups/smartgroups/connectors/kafka"
	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/engine/rule"
	"github.com/smartgroups/smartgroups/internal/process"
	"github.com/smartgroups/smartgroups/internal/serve"
	"github.com/smartgroups/smartgroups/state"
)

// Options configure a benchmark run. Build them with DefaultOptions.
type Options struct {
	// Community shapes the generated data.
	Community CommunityConfig
	// Brokers are external Kafka brokers; empty starts an embedded
	// (in-memory) broker for the run.
	Brokers []string
	// DataDir holds the input file and the state stores; empty uses a
	// temporary directory removed at the end.
	DataDir string
	// Partitions of the member topics. Default 6 (the serve default).
	Partitions int32
	// BatchSize is the serve and process batch size. Default 1000.
	BatchSize int
	// LatencyDuration is how long the fixed-load latency phase offers
	// records. Default 20s.
	LatencyDuration time.Duration
	// ServeClock is serve's clock: engine.ClockWall (default, the serve
	// default) or engine.ClockEvent (a deterministic replay: the live
	// stream's 30 days of timers fire during the run). File mode always
	// uses the event clock (its default).
	ServeClock engine.ClockMode
	// CPUProfile, when set, receives a CPU profile of the serve
	// throughput phase (the hot path end to end).
	CPUProfile string
	// MemProfile, when set, receives a heap profile taken when serve has
	// caught up with the live stream (after a GC).
	MemProfile string
	// LoadCPUProfile, when set, receives a CPU profile of serve's initial
	// load: from serve's start (definitions bootstrap included) until it
	// has consumed the initial load and gone quiet.
	LoadCPUProfile string
	// LoadOnly stops the run after serve's initial load (generate, broker,
	// serve-load): to profile or time the initial load alone. The headline
	// numbers of the live stream are then zero.
	LoadOnly bool
	// ServeOnly skips file mode, the backfill and the naive evaluator
	// (their numbers are then zero): to measure serve alone at large
	// sizes.
	ServeOnly bool
	// NaiveEvents is how many live records (a prefix of the stream) the
	// naive evaluator is timed over: it re-evaluates every group on every
	// record, so at 1k groups the whole stream of a large run would take
	// hours. Zero means DefaultNaiveEvents or the whole stream if shorter;
	// negative means the whole stream.
	NaiveEvents int
	// ProcessEvents is how many live records (a prefix of the stream)
	// file mode is timed over. Zero means DefaultProcessEvents or the
	// whole stream if shorter; negative means the whole stream. Serve and
	// the raw consumer always read the whole stream.
	ProcessEvents int
	// BrokerInMemory keeps the embedded broker's logs in memory (in the
	// process's RSS) instead of in files under the data directory (in the
	// OS page cache, without fsync). Ignored with Brokers.
	BrokerInMemory bool
	// Postgres is a PostgreSQL DSN; when set, the comparator runs.
	Postgres string
	// MemberCache and StateCacheBytes size serve's member cache and Pebble
	// block cache (serve's --member-cache and --state-cache-bytes). Zero
	// keeps serve's defaults.
	MemberCache     int
	StateCacheBytes int64
	// Log receives progress lines. Default: discard.
	Log io.Writer
}

// Default prefixes of the live stream for the modes that cannot take a
// large run's whole stream (see Options.NaiveEvents and ProcessEvents).
const (
	DefaultNaiveEvents   = 200_000
	DefaultProcessEvents = 1_000_000
)

// prefix returns how many of events live records a mode with the given
// option value is timed over.
func prefix(opt, def, events int) int {
	switch {
	case opt < 0:
		return events
	case opt == 0:
		return min(def, events)
	}
	return min(opt, events)
}

// DefaultOptions returns the defaults documented on Options.
func DefaultOptions() Options {
	return Options{Community: DefaultCommunityConfig(), Partitions: 6, BatchSize: 1000, LatencyDuration: 20 * time.Second,
		ServeClock: engine.ClockWall}
}

// QuickOptions is the --quick size: finishes in well under 3 minutes on 2
// cores.
func QuickOptions() Options {
	o := DefaultOptions()
	o.Community.Members, o.Community.Groups, o.Community.Events = 5_000, 200, 20_000
	o.LatencyDuration = 8 * time.Second
	return o
}

// Result is the outcome of a run. The JSON form has exactly the fields of
// the benchmark contract; Details holds the rest, for the table.
type Result struct {
	RawConsumeEventsPerSec    float64 `json:"raw_consume_events_per_sec"`
	EventsPerSec              float64 `json:"events_per_sec"`
	ProcessEventsPerSec       float64 `json:"process_events_per_sec"`
	NaiveEventsPerSec         float64 `json:"naive_events_per_sec"`
	LatencyP50Ms              float64 `json:"latency_p50_ms"`
	LatencyP99Ms              float64 `json:"latency_p99_ms"`
	BackfillMembersPerSec     float64 `json:"backfill_members_per_sec"`
	BackfillScanMembersPerSec float64 `json:"backfill_scan_members_per_sec"`
	PeakRSSBytes              int64   `json:"peak_rss_bytes"`
	StateBytesPerMember       float64 `json:"state_bytes_per_member"`
	Members                   int     `json:"members"`
	Groups                    int     `json:"groups"`
	Events                    int     `json:"events"`

	Details Details `json:"-"`
}

// Details are the measurements behind the headline numbers.
type Details struct {
	Spots, Partitions, BatchSize int
	ServeClock                   string
	Definitions, LoadRecords     int // definitions and initial-load records (one profile, one properties per member)
	InputBytes                   int64
	Embedded                     bool

	Generate, Produce, RawConsume, Process, Naive, Serve time.Duration
	// The initial load (not in the headline numbers): file mode and serve.
	ProcessLoad, ServeLoad            time.Duration
	ProcessEvents, ProcessDeadLetters int
	NaiveEvents, NaiveEvals           int
	// ProcessRecords and NaiveRecords are the live records file mode and
	// the naive evaluator were timed over (a prefix of the stream when
	// smaller than Events); NaiveMembers the members the naive evaluator
	// loaded (those the prefix touches, unless the PostgreSQL comparator
	// needs them all).
	ProcessRecords, NaiveRecords, NaiveMembers int
	ServeEvents                                int64

	LatencyOffered  float64 // records/s
	LatencyRecords  int
	LatencySamples  int
	LatencyMaxMs    float64
	LatencyDropped  int // records whose events were not seen (no flip, or not matched)
	LatencyDuration time.Duration

	BackfillIndexed, BackfillScan             time.Duration
	BackfillIndexedEvals, BackfillScanEvals   int
	BackfillSpotMembers                       int
	BackfillIndexedEvents, BackfillScanEvents int

	// PhaseCPU is the CPU time (user+system) of the whole process per
	// phase; with the load average it tells whether the machine was busy.
	PhaseCPU                 map[string]time.Duration
	LoadAvgStart, LoadAvgEnd string

	// StateBytes and ProcessStateBytes are the sizes of serve's and file
	// mode's state directories once reopened and flushed (see
	// settledSize); StateBytesAtShutdown is serve's as left at shutdown.
	StateBytes, StateBytesAtShutdown int64
	ProcessStateBytes                int64
	PhasePeakRSS                     map[string]int64
	// BrokerBytes is the size of the benchmark's topics on the broker at
	// the end of the serve phase, by topic (without the run's prefix);
	// BrokerOnDisk tells whether the embedded broker kept them in files.
	BrokerBytes  map[string]int64
	BrokerOnDisk bool

	Postgres *PostgresResult

	Started            time.Time
	Duration           time.Duration
	GoMaxProcs, NumCPU int
}

func (o *Options) normalize() {
	d := DefaultOptions()
	if o.Partitions <= 0 {
		o.Partitions = d.Partitions
	}
	if o.BatchSize <= 0 {
		o.BatchSize = d.BatchSize
	}
	if o.LatencyDuration <= 0 {
		o.LatencyDuration = d.LatencyDuration
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.ServeClock != engine.ClockEvent {
		o.ServeClock = engine.ClockWall
	}
	o.Community = o.Community.withDefaults()
}

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
			d.PhasePeakRSS[s.name] = p
			r.res.PeakRSSBytes = max(r.res.PeakRSSBytes, p)
		}
	}
	d.Duration = time.Since(start)
	d.LoadAvgEnd = loadAvg()
	r.log("done in %s", d.Duration.Round(time.Millisecond))
	return r.res, nil
}

// ---- phases ----

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

// brokerText lists topic sizes, largest first.
func brokerText(m map[string]int64) string {
	names := make([]string, 0, len(m))
	var total int64
	for k, v := range m {
		names = append(names, k)
		total += v
	}
	sort.Slice(names, func(i, j int) bool { return m[names[i]] > m[names[j]] })
	parts := []string{fmt.Sprintf("%.1f MiB in all", float64(total)/(1<<20))}
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%s %.1f MiB", k, float64(m[k])/(1<<20)))
	}
	return strings.Join(parts, ", ")
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
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

// brokerBytes returns the size of the run's topics on the broker, by topic
// without the run's prefix (nil when the broker does not tell).
func (r *runner) brokerBytes(ctx context.Context) map[string]int64 {
	opts, err := r.kc.ClientOpts()
	if err != nil {
		return nil
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		return nil
	}
	set := kadm.TopicsSet{}
	for t, ps := range topics.TopicsSet() {
		if strings.HasPrefix(t, r.kc.TopicPrefix) {
			set[t] = ps
		}
	}
	if len(set) == 0 {
		return nil
	}
	dirs, err := adm.DescribeAllLogDirs(ctx, set)
	if err != nil {
		return nil
	}
	out := map[string]int64{}
	dirs.Each(func(d kadm.DescribedLogDir) {
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
			out[strings.TrimPrefix(p.Topic, r.kc.TopicPrefix)] += p.Size
		})
	})
	return out
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

func (r *runner) producer() (*kgo.Client, error) {
	opts, err := r.kc.ClientOpts()
	if err != nil {
		return nil, err
	}
	return kgo.NewClient(append(opts, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.ProducerLinger(2*time.Millisecond), kgo.MaxBufferedRecords(50_000))...)
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
		var l Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return n, 0, fmt.Errorf("%s line %d: %w", path, n+1, err)
		}
		cl.Produce(ctx, &kgo.Record{Topic: r.kc.Topic(engine.Kind(l.Topic)), Key: []byte(l.Key), Value: []byte(l.Value)},
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

// rawConsume reads the member topics from the start with a plain franz-go
// consumer that does nothing with the records: the input ceiling.
func (r *runner) rawConsume(ctx context.Context) error {
	opts, err := r.kc.ClientOpts()
	if err != nil {
		return err
	}
	parts := map[string]map[int32]kgo.Offset{}
	for topic, ps := range r.liveStart {
		parts[topic] = map[int32]kgo.Offset{}
		for p, off := range ps {
			parts[topic][p] = kgo.NewOffset().At(off)
		}
	}
	cl, err := kgo.NewClient(append(opts, kgo.ConsumePartitions(parts))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	want := r.res.Events
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	t := time.Now()
	got := 0
	for got < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read %d of %d records: %w", got, want, err)
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return ferr
		}
		got += fs.NumRecords()
	}
	d := time.Since(t)
	r.res.Details.RawConsume = d
	r.res.RawConsumeEventsPerSec = float64(got) / d.Seconds()
	r.log("raw consume: %d records in %s: %.0f records/s", got, d.Round(time.Millisecond), r.res.RawConsumeEventsPerSec)
	return nil
}

// process runs file mode over the initial load, then (timed) over the
// live stream, or its first ProcessEvents records, on the same state.
func (r *runner) process(ctx context.Context) error {
	dir := filepath.Join(r.dir, "process")
	one := func(path string, lines int) (process.Stats, time.Duration, error) {
		f, err := os.Open(path)
		if err != nil {
			return process.Stats{}, 0, err
		}
		defer func() { _ = f.Close() }()
		var in io.Reader = bufio.NewReaderSize(f, 1<<20)
		if lines >= 0 {
			in = &lineLimiter{r: in, left: lines}
		}
		t := time.Now()
		st, err := process.Run(ctx, process.Options{DataDir: dir, BatchSize: r.o.BatchSize}, in, io.Discard, io.Discard)
		return st, time.Since(t), err
	}
	dd := &r.res.Details
	dd.ProcessRecords = prefix(r.o.ProcessEvents, DefaultProcessEvents, r.res.Events)
	lst, ld, err := one(r.load, -1)
	if err != nil {
		return err
	}
	dd.ProcessLoad = ld
	r.log("process (file mode): initial load of %d records in %s: %.0f records/s, %d events", lst.Records, ld.Round(time.Millisecond),
		float64(lst.Records)/ld.Seconds(), lst.Events)
	st, d, err := one(r.live, dd.ProcessRecords)
	if err != nil {
		return err
	}
	dd.Process, dd.ProcessEvents, dd.ProcessDeadLetters = d, st.Events, lst.DeadLetters+st.DeadLetters
	dd.ProcessRecords = st.Records
	r.res.ProcessEventsPerSec = float64(st.Records) / d.Seconds()
	if dd.ProcessStateBytes, err = settledSize(dir); err != nil {
		return err
	}
	r.log("process (file mode): %d of %d live records in %s: %.0f records/s, %d events, %d dead letters", st.Records, r.res.Events,
		d.Round(time.Millisecond), r.res.ProcessEventsPerSec, st.Events, dd.ProcessDeadLetters)
	return nil
}

// lineLimiter reads up to left newline-terminated lines from r.
type lineLimiter struct {
	r    io.Reader
	left int
}

func (l *lineLimiter) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, io.EOF
	}
	n, err := l.r.Read(p)
	for i := 0; i < n; i++ {
		if p[i] == '\n' {
			if l.left--; l.left == 0 {
				return i + 1, nil
			}
		}
	}
	return n, err
}

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

// naive runs the naive evaluator over the initial load, then (timed) over
// the first NaiveEvents records of the live stream. Its cost per record
// depends on the member's own state and the spot's groups, not on the
// other members, so it loads only the members that prefix touches (all of
// them when the PostgreSQL comparator needs the whole state), applies
// their initial load without evaluating and evaluates each once, untimed,
// before the timed prefix: the memberships are those evaluating every
// initial-load record would leave, since the initial load has one ts.
func (r *runner) naive(context.Context) error {
	dd := &r.res.Details
	limit := prefix(r.o.NaiveEvents, DefaultNaiveEvents, r.res.Events)
	var touched map[string]bool
	if r.o.Postgres == "" {
		var err error
		if touched, err = liveKeys(r.live, limit); err != nil {
			return err
		}
	}
	n := NewNaive()
	one := func(path string, limit int, apply func(engine.Record)) (int, time.Duration, error) {
		f, err := os.Open(path)
		if err != nil {
			return 0, 0, err
		}
		defer func() { _ = f.Close() }()
		var in io.Reader = bufio.NewReaderSize(f, 1<<20)
		if limit >= 0 {
			in = &lineLimiter{r: in, left: limit}
		}
		src := file.NewSource(in)
		t := time.Now()
		applied := 0
		for {
			recs, err := src.Next(1000)
			for _, rec := range recs {
				apply(rec)
			}
			applied += len(recs)
			if errors.Is(err, io.EOF) {
				return applied, time.Since(t), nil
			}
			if err != nil {
				return 0, 0, err
			}
		}
	}
	_, ld, err := one(r.load, -1, func(rec engine.Record) {
		if rec.Kind == engine.KindDefinitions || touched == nil || touched[string(rec.Key)] {
			n.Load(rec)
		}
	})
	if err != nil {
		return err
	}
	t := time.Now()
	n.EvaluateAll()
	dd.NaiveMembers = n.Members()
	r.log("naive: initial load of %d members in %s, evaluated in %s", dd.NaiveMembers, ld.Round(time.Millisecond),
		time.Since(t).Round(time.Millisecond))
	records, events, evals := n.Records, n.Events, n.Evals
	_, d, err := one(r.live, limit, n.Apply)
	if err != nil {
		return err
	}
	dd.Naive, dd.NaiveEvents, dd.NaiveEvals = d, n.Events-events, n.Evals-evals
	dd.NaiveRecords = n.Records - records
	r.res.NaiveEventsPerSec = float64(dd.NaiveRecords) / d.Seconds()
	if r.o.Postgres != "" { // the comparator reads the final member state
		r.naiveModel = n
	}
	r.log("naive: %d of %d live records in %s: %.0f records/s (%d rule evaluations, %d flips)", dd.NaiveRecords, r.res.Events,
		d.Round(time.Millisecond), r.res.NaiveEventsPerSec, dd.NaiveEvals, dd.NaiveEvents)
	return nil
}

// liveKeys returns the record keys (spot/member) of the first limit lines
// of a live NDJSON file.
func liveKeys(path string, limit int) (map[string]bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(bufio.NewReaderSize(f, 1<<20))
	sc.Buffer(make([]byte, 0, 1<<20), file.MaxLineBytes)
	keys := map[string]bool{}
	var l struct {
		Key string `json:"key"`
	}
	for i := 0; i < limit && sc.Scan(); i++ {
		l.Key = ""
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, i+1, err)
		}
		keys[l.Key] = true
	}
	return keys, sc.Err()
}

// ---- serve ----

type serveInstance struct {
	cancel  context.CancelFunc
	done    chan error
	metrics string
	events  atomic.Int64
	// lastRecEvNs is when the last batch with events caused by records
	// (not by timers) was committed: with the wall clock, timers keep
	// firing and committing after the stream has been processed.
	lastRecEvNs atomic.Int64
}

// startServe runs serve.Run in the background on the benchmark's topics
// and state directory, and waits until it is ready.
func (r *runner) startServe(ctx context.Context) (*serveInstance, func() error, error) {
	cfg := serve.DefaultConfig()
	cfg.Kafka = r.kc
	cfg.DataDir = filepath.Join(r.dir, "serve")
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Clock = r.o.ServeClock
	cfg.BatchSize = r.o.BatchSize
	if r.o.MemberCache > 0 {
		cfg.MemberCache = r.o.MemberCache
	}
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
	in, stop, err := r.startServe(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = stop() }()
	d, err := r.caughtUp(ctx, in, float64(r.res.Details.LoadRecords), "")
	if err != nil {
		return err
	}
	stopProfile()
	r.res.Details.ServeLoad = d
	r.log("serve: initial load of %d records in %s: %.0f records/s, %d membership events", r.res.Details.LoadRecords,
		d.Round(time.Millisecond), float64(r.res.Details.LoadRecords)/d.Seconds(), in.events.Load())
	return stop()
}

// serve restarts serve over the live backlog, measures its throughput,
// then the latency at a fixed load, and the state size after shutdown.
func (r *runner) serve(ctx context.Context) error {
	in, stop, err := r.startServe(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = stop() }()
	// serve's counter starts at zero and the live records are all it has
	// left to read; it may have consumed some before the first scrape.
	d, err := r.caughtUp(ctx, in, float64(r.res.Events), r.o.CPUProfile)
	if err != nil {
		return err
	}
	if r.o.MemProfile != "" {
		if err := writeHeapProfile(r.o.MemProfile); err != nil {
			return err
		}
	}
	dd := &r.res.Details
	dd.Serve, dd.ServeEvents = d, in.events.Load()
	r.res.EventsPerSec = float64(r.res.Events) / d.Seconds()
	r.log("serve (Kafka, exactly-once): %d live records in %s: %.0f records/s, %d membership events", r.res.Events, d.Round(time.Millisecond),
		r.res.EventsPerSec, dd.ServeEvents)
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

type scrape struct {
	at       time.Time
	consumed float64 // member records
	commits  float64
}

func scrapeMetrics(ctx context.Context, url string) (scrape, error) {
	s := scrape{}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return s, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return s, err
	}
	defer func() { _ = resp.Body.Close() }()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "smartgroups_records_consumed_total{"):
			if strings.Contains(line, `topic="definitions"`) {
				continue
			}
			s.consumed += metricValue(line)
		case strings.HasPrefix(line, `smartgroups_transactions_total{result="commit"}`):
			s.commits = metricValue(line)
		}
	}
	s.at = time.Now()
	return s, sc.Err()
}

func metricValue(line string) float64 {
	i := strings.LastIndexByte(line, ' ')
	v, _ := strconv.ParseFloat(line[i+1:], 64)
	return v
}

// caughtUp waits until serve has consumed want member records (its
// counter since start) and the batches holding them are committed, and
// returns the time from the first member record consumed to the last
// output transaction with events caused by records. With the wall clock,
// timers keep firing and committing after the stream is processed, so
// commits alone never go quiet; timer transactions are not counted.
func (r *runner) caughtUp(ctx context.Context, in *serveInstance, want float64, cpuProfile string) (time.Duration, error) {
	stopProfile, err := startCPUProfile(cpuProfile)
	if err != nil {
		return 0, err
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
		return 0, err
	}
	start := time.Now()
	var first, lastConsumed, lastChange time.Time
	if prev.consumed > 0 {
		// Consumption began before the first scrape.
		first, lastConsumed = start, start
	}
	for {
		time.Sleep(every)
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		s, err := scrapeMetrics(ctx, in.metrics)
		if err != nil {
			return 0, err
		}
		mid := prev.at.Add(s.at.Sub(prev.at) / 2)
		if s.consumed != prev.consumed {
			if first.IsZero() {
				first = mid
			}
			lastConsumed = mid
		}
		if s.commits != prev.commits || s.consumed != prev.consumed {
			lastChange = mid
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
			return 0, fmt.Errorf("serve consumed %.0f of %.0f records and made no progress for %s", s.consumed, want, stall)
		}
		select {
		case err := <-in.done:
			in.done <- err
			return 0, fmt.Errorf("serve stopped: %w", err)
		default:
		}
	}
	end := latest(lastConsumed, time.Unix(0, in.lastRecEvNs.Load()))
	if first.IsZero() || !end.After(first) {
		return 0, errors.New("serve consumed nothing")
	}
	return end.Sub(first), nil
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

// latency offers live records at half the measured serve throughput and
// times each from its production to the first membership event it caused,
// as seen by a read_committed consumer of the output topic.
func (r *runner) latency(ctx context.Context, in *serveInstance) error {
	rate := r.res.EventsPerSec / 2
	if rate < 1 || math.IsInf(rate, 0) || math.IsNaN(rate) {
		rate = 1
	}
	opts, err := r.kc.ClientOpts()
	if err != nil {
		return err
	}
	admCl, err := kgo.NewClient(opts...)
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
	cons, err := kgo.NewClient(append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{r.kc.MembershipsTopic(): parts}),
		kgo.FetchMaxWait(50*time.Millisecond))...)
	if err != nil {
		return err
	}
	defer cons.Close()
	prod, err := kgo.NewClient(append(opts, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)), kgo.ProducerLinger(0))...)
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
	sort.Float64s(samples)
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

// ---- helpers ----

func counterValue(g prometheus.Gatherer, name string) float64 {
	mfs, err := g.Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		total := 0.0
		for _, m := range mf.GetMetric() {
			total += m.GetCounter().GetValue()
		}
		return total
	}
	return 0
}

// settledSize returns the size of a closed store's directory after
// reopening it, which replays its write-ahead log into tables, and
// flushing it. A clean shutdown leaves the memtables' contents in the log:
// with 64 MiB memtables, every version of every state written since the
// last flush, which at small sizes outweighs the state itself.
func settledSize(dir string) (int64, error) {
	st, err := state.Open(dir, state.Options{})
	if err != nil {
		return 0, err
	}
	if err := st.Flush(); err != nil {
		_ = st.Close()
		return 0, err
	}
	if err := st.Close(); err != nil {
		return 0, err
	}
	return dirSize(dir), nil
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// cpuTime is the user+system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAvg returns the 1, 5 and 15 minute load averages, or "".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// resetPeakRSS resets the kernel's peak RSS mark of this process (Linux
// clear_refs 5), so that each phase's peak can be read separately.
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS returns the peak resident set size (VmHWM) of this process, or
// getrusage's maxrss when /proc is not available.
func peakRSS() int64 {
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				f := strings.Fields(rest)
				if len(f) >= 1 {
					kb, err := strconv.ParseInt(f[0], 10, 64)
					if err == nil {
						return kb * 1024
					}
				}
			}
		}
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		return ru.Maxrss * 1024
	}
	return 0
}
