package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"
)

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

// Targets of the benchmark contract.
const (
	TargetServeVsRaw        = 0.4  // events_per_sec / raw_consume_events_per_sec
	TargetServeVsNaive      = 20.0 // events_per_sec / naive_events_per_sec, at 1k groups
	TargetLatencyP99Ms      = 50.0
	TargetBackfillIndexScan = 10.0 // backfill_members_per_sec / backfill_scan_members_per_sec
)

// Ratios are the headline ratios.
type Ratios struct {
	ServeVsRaw, ServeVsNaive, BackfillIndexVsScan float64
}

// Ratios computes the headline ratios.
func (r *Result) Ratios() Ratios {
	div := func(a, b float64) float64 {
		if b == 0 {
			return math.NaN()
		}
		return a / b
	}
	return Ratios{
		ServeVsRaw:          div(r.EventsPerSec, r.RawConsumeEventsPerSec),
		ServeVsNaive:        div(r.EventsPerSec, r.NaiveEventsPerSec),
		BackfillIndexVsScan: div(r.BackfillMembersPerSec, r.BackfillScanMembersPerSec),
	}
}

// WriteJSON writes the result as one JSON object on one line.
func (r *Result) WriteJSON(w io.Writer) error {
	clean := *r
	for _, f := range []*float64{&clean.RawConsumeEventsPerSec, &clean.EventsPerSec, &clean.ProcessEventsPerSec,
		&clean.NaiveEventsPerSec, &clean.LatencyP50Ms, &clean.LatencyP99Ms, &clean.BackfillMembersPerSec,
		&clean.BackfillScanMembersPerSec, &clean.StateBytesPerMember} {
		if math.IsNaN(*f) || math.IsInf(*f, 0) {
			*f = -1
		} else {
			*f = math.Round(*f*100) / 100
		}
	}
	b, err := json.Marshal(clean)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// ratioVerdict is verdict for a ratio, which is NaN when a mode it needs
// did not run (--serve-only, --load-only).
func ratioVerdict(v, target float64) string {
	if math.IsNaN(v) {
		return "not measured in this run"
	}
	return verdict(v >= target)
}

// WriteTable writes a readable report.
func (r *Result) WriteTable(w io.Writer) error {
	d := r.Details
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }
	broker := "external brokers"
	switch {
	case d.Embedded && d.BrokerOnDisk:
		broker = "embedded broker (kfake, logs in files without fsync)"
	case d.Embedded:
		broker = "embedded in-memory broker (kfake)"
	}
	fmt.Fprintf(w, "smartgroups bench\n")
	fmt.Fprintf(w, "  members %d, groups %d, live events %d, spots %d\n", r.Members, r.Groups, r.Events, d.Spots)
	fmt.Fprintf(w, "  input: %d definitions, %d initial-load records (profile + properties per member), %d live records; %.1f MiB\n",
		d.Definitions, d.LoadRecords, r.Events, float64(d.InputBytes)/(1<<20))
	fmt.Fprintf(w, "  initial load (not in the numbers below): serve %s (%.0f records/s), file mode %s\n", d.ServeLoad.Round(time.Millisecond),
		float64(d.LoadRecords)/d.ServeLoad.Seconds(), d.ProcessLoad.Round(time.Millisecond))
	fmt.Fprintf(w, "  %s, %d partitions, batch %d, GOMAXPROCS %d, %d CPUs, run took %s\n", broker, d.Partitions, d.BatchSize, d.GoMaxProcs, d.NumCPU,
		d.Duration.Round(time.Second))
	var cpu time.Duration
	for _, c := range d.PhaseCPU {
		cpu += c
	}
	fmt.Fprintf(w, "  load average at start %s, at end %s; process CPU %s (other work on the machine slows every number)\n\n",
		d.LoadAvgStart, d.LoadAvgEnd, cpu.Round(time.Millisecond))
	p("throughput over the live stream (records/s, same records)\tvalue\tdetail")
	perCPU := func(phase string, records int) string {
		c := d.PhaseCPU[phase]
		if c <= 0 {
			return ""
		}
		return fmt.Sprintf(", %.0f records per CPU-second of the process", float64(records)/c.Seconds())
	}
	// over names the part of the live stream a mode was timed over.
	over := func(records int) string {
		if records >= r.Events {
			return "whole stream"
		}
		return fmt.Sprintf("first %d of %d live records", records, r.Events)
	}
	p("  raw_consume_events_per_sec\t%.0f\tfranz-go consumer, no processing, %s", r.RawConsumeEventsPerSec, d.RawConsume.Round(time.Millisecond))
	p("  events_per_sec\t%.0f\tserve (%s clock), exactly-once, first consumed -> last committed, %s, %d membership events", r.EventsPerSec,
		d.ServeClock, d.Serve.Round(time.Millisecond), d.ServeEvents)
	p("  process_events_per_sec\t%.0f\tfile mode (event clock), %s, %s, %d events, %d dead letters%s", r.ProcessEventsPerSec,
		over(d.ProcessRecords), d.Process.Round(time.Millisecond), d.ProcessEvents, d.ProcessDeadLetters, perCPU("process", d.ProcessRecords))
	p("  naive_events_per_sec\t%.0f\tevery group of the spot on each record, in memory, %s (%d members loaded), %s, %d evaluations", r.NaiveEventsPerSec,
		over(d.NaiveRecords), d.NaiveMembers, d.Naive.Round(time.Millisecond), d.NaiveEvals)
	p("latency at %.0f records/s offered (half of events_per_sec), %s\t\t", d.LatencyOffered, d.LatencyDuration)
	p("  latency_p50_ms\t%.1f\t%d of %d records caused an event; max %.1f ms", r.LatencyP50Ms, d.LatencySamples, d.LatencyRecords, d.LatencyMaxMs)
	p("  latency_p99_ms\t%.1f\tproduce -> visible to a read_committed consumer", r.LatencyP99Ms)
	p("backfill of a new group over %d members\t\t", d.BackfillSpotMembers)
	p("  backfill_members_per_sec\t%.0f\tindexed rule: %s, %d members evaluated, %d added", r.BackfillMembersPerSec,
		d.BackfillIndexed.Round(time.Microsecond), d.BackfillIndexedEvals, d.BackfillIndexedEvents)
	p("  backfill_scan_members_per_sec\t%.0f\tunindexed rule: %s, %d members evaluated, %d added", r.BackfillScanMembersPerSec,
		d.BackfillScan.Round(time.Microsecond), d.BackfillScanEvals, d.BackfillScanEvents)
	p("resources\t\t")
	brokerMem := "broker logs in memory"
	if d.BrokerOnDisk {
		brokerMem = "broker logs in files, not in RSS"
	} else if !d.Embedded {
		brokerMem = "external broker"
	}
	p("  peak_rss_bytes\t%d\t%.0f MiB, whole process (%s; generator, all modes)%s", r.PeakRSSBytes, float64(r.PeakRSSBytes)/(1<<20),
		brokerMem, phasePeaks(d.PhasePeakRSS))
	p("  state_bytes_per_member\t%.0f\tserve state dir %.1f MiB reopened and flushed, %.1f MiB as left at shutdown (file mode: %.1f MiB)",
		r.StateBytesPerMember, float64(d.StateBytes)/(1<<20), float64(d.StateBytesAtShutdown)/(1<<20), float64(d.ProcessStateBytes)/(1<<20))
	if d.BrokerBytes != nil {
		p("  broker topics\t\t%s", brokerText(d.BrokerBytes))
	}
	p("\t")
	ra := r.Ratios()
	p("ratio\tvalue\ttarget")
	p("  events_per_sec / raw_consume_events_per_sec\t%.3f\t>= %.1f: %s", ra.ServeVsRaw, TargetServeVsRaw, ratioVerdict(ra.ServeVsRaw, TargetServeVsRaw))
	naiveNote := ""
	if r.Groups < 1000 {
		naiveNote = fmt.Sprintf(" (target is for 1k groups; this run has %d)", r.Groups)
	}
	p("  events_per_sec / naive_events_per_sec\t%.3f\t>= %.0f: %s%s", ra.ServeVsNaive, TargetServeVsNaive, ratioVerdict(ra.ServeVsNaive, TargetServeVsNaive), naiveNote)
	p("  latency_p99_ms\t%.1f\t< %.0f: %s", r.LatencyP99Ms, TargetLatencyP99Ms, verdict(r.LatencyP99Ms >= 0 && r.LatencyP99Ms < TargetLatencyP99Ms))
	p("  backfill indexed / scan\t%.2f\t>= %.0f: %s", ra.BackfillIndexVsScan, TargetBackfillIndexScan, ratioVerdict(ra.BackfillIndexVsScan, TargetBackfillIndexScan))
	if pg := d.Postgres; pg != nil {
		p("\t")
		p("PostgreSQL comparator (%s)\t\t", pg.Version)
		p("  load (COPY members, properties, activities)\t%s\t%d members, %d property values, %d activities", pg.Load.Round(time.Millisecond),
			pg.Members, pg.Properties, pg.Activities)
		p("  recompute all %d groups\t%.2f s\tserver CPU %s s, %d memberships; naive recompute at the same now: %d memberships, %d groups differ",
			pg.Groups, pg.Total.Seconds(), cpuText(pg.CPUSeconds), pg.Memberships, pg.NaiveMemberships, pg.GroupsDiffering)
	}
	return tw.Flush()
}

func cpuText(s float64) string {
	if s < 0 {
		return "unknown (server not local)"
	}
	return fmt.Sprintf("%.2f", s)
}

func phasePeaks(m map[string]int64) string {
	if len(m) == 0 {
		return ""
	}
	var parts []string
	for _, k := range []string{"generate", "broker", "serve-load", "produce-live", "raw", "process", "backfill", "naive", "serve", "postgres"} {
		if v, ok := m[k]; ok {
			parts = append(parts, fmt.Sprintf("%s %.0f", k, float64(v)/(1<<20)))
		}
	}
	return "; per phase MiB: " + strings.Join(parts, ", ")
}
