package bench

import (
	"io"
	"time"

	"github.com/smartgroups/smartgroups/engine"
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
	// ServeClock is serve's clock in the throughput phases:
	// engine.ClockEvent (default: the clock of file mode and of the naive
	// evaluator, so every mode evaluates the same rules at the same
	// instants) or engine.ClockWall. The latency phase always runs serve on
	// the wall clock, whose timers it measures.
	ServeClock engine.ClockMode
	// ServeCommand, when set, runs serve as a separate process: the
	// command (e.g. the smartgroups binary) to which "serve" and its flags
	// are appended; serve's peak RSS is then its own
	// (serve_rss_bytes_per_member). Empty: serve runs in this process, and
	// its memory is not measured apart. CPUProfile and MemProfile need
	// serve in this process.
	ServeCommand []string
	// Repeat runs the throughput phases (each mode over the same live
	// stream, on fresh topics and state) this many times; the headline
	// numbers are the medians. Default 1.
	Repeat int
	// CPUProfile, when set, receives a CPU profile of the serve
	// throughput phase (the hot path end to end).
	CPUProfile string
	// MemProfile, when set, receives a heap profile taken when serve has
	// caught up with the live stream (after a GC).
	MemProfile string
	// ProcessCPUProfile, when set, receives a CPU profile of file mode's
	// live phase (process.Run in this process).
	ProcessCPUProfile string
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
	// StateCacheBytes sizes serve's Pebble block cache (serve's
	// --state-cache-bytes). Zero keeps serve's default.
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
		ServeClock: engine.ClockEvent, Repeat: 1}
}

// QuickOptions is the --quick size: finishes in well under 3 minutes on 2
// cores.
func QuickOptions() Options {
	o := DefaultOptions()
	o.Community.Members, o.Community.Groups, o.Community.Events = 5_000, 200, 20_000
	o.LatencyDuration = 8 * time.Second
	return o
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
	if o.ServeClock != engine.ClockWall {
		o.ServeClock = engine.ClockEvent
	}
	if o.Repeat <= 0 {
		o.Repeat = d.Repeat
	}
	o.Community = o.Community.withDefaults()
}
