package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
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
	// EventsPerRecord is serve's output membership events per input
	// record of the live stream.
	EventsPerRecord float64 `json:"events_per_record"`
	// PipeCeilingEventsPerSec is the input records per second of a
	// franz-go job that reads the live stream and publishes
	// EventsPerRecord events of the mean size per input record in
	// transactions of 1,000 input records: the I/O floor of this work.
	PipeCeilingEventsPerSec float64 `json:"pipe_ceiling_events_per_sec"`
	// ServeRSSBytesPerMember is the serve process's peak RSS over the
	// throughput phase per member (0: serve ran in the benchmark's
	// process, not measured apart).
	ServeRSSBytesPerMember float64 `json:"serve_rss_bytes_per_member"`
	// LoadAverage is the machine's 1-minute load average, the larger of
	// the run's start and end (-1: unknown).
	LoadAverage float64 `json:"load_average"`
	// ServeLastTenthOverFirst is serve's throughput over the last tenth
	// of the live stream divided by its throughput over the first tenth
	// (1: steady; below 1: it slowed down as the stream went on).
	ServeLastTenthOverFirst float64 `json:"serve_last_tenth_over_first"`
	// RestoreSeconds is the time from starting serve on an empty data
	// directory, once the throughput phase's serve has stopped, until it
	// owns every member with every partition restored from the
	// changelog; RestoreMembersPerSec is the members / that time.
	RestoreSeconds       float64 `json:"restore_seconds"`
	RestoreMembersPerSec float64 `json:"restore_members_per_sec"`
	// RestartRestoreSeconds is the same for serve restarted on the
	// throughput phase's data directory: its local snapshot and the
	// changelog after it.
	RestartRestoreSeconds float64 `json:"restart_restore_seconds"`
	// LatencyCatchupSeconds is how long serve, restarted on the wall
	// clock for the latency phase, took to fire the timers that the jump
	// from the event clock made overdue (-1: it had not caught up within
	// the wait); the latency phase starts after it, in steady state.
	LatencyCatchupSeconds float64 `json:"latency_timer_catchup_seconds"`

	Details Details `json:"-"`
}

// Details are the measurements behind the headline numbers.
type Details struct {
	Spots, Partitions, BatchSize int
	ServeClock                   string
	Definitions, LoadRecords     int // definitions and initial-load records (one profile, one properties per member, then the history)
	HistoryRecords               int // of LoadRecords: the activity history before the live stream
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
	// ServePeakRSS is the serve process's peak RSS in the throughput
	// phase (0: serve ran in the benchmark's process).
	ServePeakRSS int64
	// ServeFirstTenth and ServeLastTenth are the times serve took over
	// the first and the last tenth of the live records (0: not measured).
	ServeFirstTenth, ServeLastTenth time.Duration
	// Restore and RestartRestore are the takeovers behind RestoreSeconds
	// and RestartRestoreSeconds; RestoreRecords and
	// RestartRestoreRecords the changelog records each applied;
	// RestoreMembers the members restored.
	Restore, RestartRestore               time.Duration
	RestoreRecords, RestartRestoreRecords float64
	RestoreMembers                        int64
	// TemplateEvents counts file mode's membership events over the live
	// records it was timed over, by rule template of the group.
	TemplateEvents map[string]int
	// TemplateGroups counts the smart groups of each template.
	TemplateGroups map[string]int
	// Pipe is the pipe ceiling's duration; PipeEventBytes the output
	// record size it wrote (serve's mean membership event).
	Pipe           time.Duration
	PipeEventBytes int
	// Repeats are the headline numbers of each repetition when the
	// throughput phases ran more than once (the headline is their median).
	Repeats []Repeat

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

// Repeat is one repetition's headline numbers.
type Repeat struct {
	Raw, Serve, Process, Naive, Pipe float64 // records/s
	EventsPerRecord                  float64
	Stability                        float64 // serve_last_tenth_over_first
	Restore, RestartRestore          float64 // seconds
}

// Targets of the benchmark contract.
const (
	TargetServeVsRaw        = 0.4  // events_per_sec / raw_consume_events_per_sec
	TargetServeVsNaive      = 20.0 // events_per_sec / naive_events_per_sec, at 1k groups
	TargetLatencyP99Ms      = 50.0
	TargetBackfillIndexScan = 10.0 // backfill_members_per_sec / backfill_scan_members_per_sec
	TargetServeVsPipe       = 0.3  // events_per_sec / pipe_ceiling_events_per_sec
	TargetProcessVsServe    = 0.6  // process_events_per_sec / events_per_sec
	TargetRSSPerMember      = 2048 // serve_rss_bytes_per_member at 1M members
)

// Ratios are the headline ratios.
type Ratios struct {
	ServeVsRaw, ServeVsNaive, BackfillIndexVsScan, ServeVsPipe, ProcessVsServe float64
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
		ServeVsPipe:         div(r.EventsPerSec, r.PipeCeilingEventsPerSec),
		ProcessVsServe:      div(r.ProcessEventsPerSec, r.EventsPerSec),
	}
}

// WriteJSON writes the result as one JSON object on one line.
func (r *Result) WriteJSON(w io.Writer) error {
	clean := *r
	for _, f := range []*float64{&clean.RawConsumeEventsPerSec, &clean.EventsPerSec, &clean.ProcessEventsPerSec,
		&clean.NaiveEventsPerSec, &clean.LatencyP50Ms, &clean.LatencyP99Ms, &clean.BackfillMembersPerSec,
		&clean.BackfillScanMembersPerSec, &clean.StateBytesPerMember, &clean.EventsPerRecord, &clean.PipeCeilingEventsPerSec,
		&clean.ServeRSSBytesPerMember, &clean.LoadAverage, &clean.ServeLastTenthOverFirst, &clean.RestoreSeconds,
		&clean.RestoreMembersPerSec, &clean.RestartRestoreSeconds, &clean.LatencyCatchupSeconds} {
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
	fmt.Fprintf(w, "  input: %d definitions, %d initial-load records (profile + properties per member, then %d records of history), %d live records; %.1f MiB\n",
		d.Definitions, d.LoadRecords, d.HistoryRecords, r.Events, float64(d.InputBytes)/(1<<20))
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
	p("  pipe_ceiling_events_per_sec\t%.0f\tfranz-go consume + %.2f events of %d bytes per record published in transactions of 1,000 records, %s",
		r.PipeCeilingEventsPerSec, r.EventsPerRecord, d.PipeEventBytes, d.Pipe.Round(time.Millisecond))
	p("  events_per_sec\t%.0f\tserve (%s clock), exactly-once, first consumed -> last committed, %s, %d membership events (events_per_record %.2f)",
		r.EventsPerSec, d.ServeClock, d.Serve.Round(time.Millisecond), d.ServeEvents, r.EventsPerRecord)
	p("  serve_last_tenth_over_first\t%.2f\t%s", r.ServeLastTenthOverFirst, tenthsText(d, r.Events))
	p("  process_events_per_sec\t%.0f\tfile mode (event clock), %s, %s, %d events, %d dead letters%s", r.ProcessEventsPerSec,
		over(d.ProcessRecords), d.Process.Round(time.Millisecond), d.ProcessEvents, d.ProcessDeadLetters, perCPU("process", d.ProcessRecords))
	p("  naive_events_per_sec\t%.0f\tevery group of the spot on each record, in memory, %s (%d members loaded), %s, %d evaluations", r.NaiveEventsPerSec,
		over(d.NaiveRecords), d.NaiveMembers, d.Naive.Round(time.Millisecond), d.NaiveEvals)
	p("latency at %.0f records/s offered (half of events_per_sec), %s\t\t", d.LatencyOffered, d.LatencyDuration)
	p("  latency_timer_catchup_seconds\t%.1f\tserve restarted on the wall clock, until it had fired the timers overdue at its start (offering starts after)", r.LatencyCatchupSeconds)
	p("  latency_p50_ms\t%.1f\t%d of %d records caused an event; max %.1f ms", r.LatencyP50Ms, d.LatencySamples, d.LatencyRecords, d.LatencyMaxMs)
	p("  latency_p99_ms\t%.1f\tproduce -> visible to a read_committed consumer", r.LatencyP99Ms)
	p("restore after serve stopped (the same group, topics and broker)\t\t")
	p("  restore_members_per_sec\t%.0f\t%d members restored on an empty data dir", r.RestoreMembersPerSec, d.RestoreMembers)
	p("  restore_seconds\t%.2f\tserve start -> every partition owned and restored from the whole changelog (%.0f records)",
		r.RestoreSeconds, d.RestoreRecords)
	p("  restart_restore_seconds\t%.2f\tthe same, restarted on its data dir: local snapshot + the %.0f changelog records after it",
		r.RestartRestoreSeconds, d.RestartRestoreRecords)
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
	p("  serve_rss_bytes_per_member\t%.0f\t%s", r.ServeRSSBytesPerMember, serveRSSText(d.ServePeakRSS))
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
	p("  events_per_sec / pipe_ceiling_events_per_sec\t%.3f\t>= %.1f: %s", ra.ServeVsPipe, TargetServeVsPipe, ratioVerdict(ra.ServeVsPipe, TargetServeVsPipe))
	p("  process_events_per_sec / events_per_sec\t%.3f\t>= %.1f: %s", ra.ProcessVsServe, TargetProcessVsServe, ratioVerdict(ra.ProcessVsServe, TargetProcessVsServe))
	rssNote := ""
	if r.Members < 1_000_000 {
		rssNote = fmt.Sprintf(" (target is for 1M members; this run has %d)", r.Members)
	}
	rss := r.ServeRSSBytesPerMember
	if rss <= 0 {
		rss = math.NaN()
	}
	p("  serve_rss_bytes_per_member\t%.0f\t<= %d: %s%s", rss, TargetRSSPerMember, ratioVerdict(-rss, -TargetRSSPerMember), rssNote)
	p("  latency_p99_ms\t%.1f\t< %.0f: %s", r.LatencyP99Ms, TargetLatencyP99Ms, verdict(r.LatencyP99Ms >= 0 && r.LatencyP99Ms < TargetLatencyP99Ms))
	p("  backfill indexed / scan\t%.2f\t>= %.0f: %s", ra.BackfillIndexVsScan, TargetBackfillIndexScan, ratioVerdict(ra.BackfillIndexVsScan, TargetBackfillIndexScan))
	writeTemplates(p, d, r.Events)
	writeRepeats(p, d.Repeats)
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

// tenthsText details serve_last_tenth_over_first.
func tenthsText(d Details, events int) string {
	if d.ServeFirstTenth <= 0 || d.ServeLastTenth <= 0 {
		return "not measured: the stream went by between too few scrapes of serve's metrics"
	}
	n := float64(events) / 10
	return fmt.Sprintf("serve's records/s over the last tenth of the live stream (%.0f in %s) / over the first (%.0f in %s)",
		n/d.ServeLastTenth.Seconds(), d.ServeLastTenth.Round(time.Millisecond), n/d.ServeFirstTenth.Seconds(),
		d.ServeFirstTenth.Round(time.Millisecond))
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

func serveRSSText(peak int64) string {
	if peak <= 0 {
		return "not measured: serve ran in the benchmark's process (use the smartgroups binary)"
	}
	return fmt.Sprintf("serve process peak RSS in the throughput phase %.0f MiB (its own: no broker, no generator)", float64(peak)/(1<<20))
}

// writeTemplates writes file mode's events per live record by rule
// template.
func writeTemplates(p func(string, ...any), d Details, events int) {
	if len(d.TemplateEvents) == 0 || d.ProcessRecords == 0 {
		return
	}
	p("\t")
	p("events per 1,000 live records by rule template (file mode, %d records)\tevents\tgroups", d.ProcessRecords)
	names := slices.Sorted(maps.Keys(d.TemplateGroups))
	slices.SortStableFunc(names, func(a, b string) int { return d.TemplateEvents[b] - d.TemplateEvents[a] })
	for _, n := range names {
		p("  %s\t%.1f\t%d", n, 1000*float64(d.TemplateEvents[n])/float64(d.ProcessRecords), d.TemplateGroups[n])
	}
	_ = events
}

// writeRepeats writes each repetition's numbers.
func writeRepeats(p func(string, ...any), reps []Repeat) {
	if len(reps) < 2 {
		return
	}
	p("\t")
	p("repetitions (records/s; the headline is the median)\traw / pipe / serve / process / naive\tevents per record; serve last/first tenth; restore / restart s")
	for i, x := range reps {
		p("  %d\t%.0f / %.0f / %.0f / %.0f / %.0f\t%.2f; %.2f; %.2f / %.2f", i+1, x.Raw, x.Pipe, x.Serve, x.Process, x.Naive, x.EventsPerRecord,
			x.Stability, x.Restore, x.RestartRestore)
	}
}

// median sets the headline rates to the medians of the repetitions and
// records each repetition (nothing changes with one).
func (r *Result) median(reps []Result) {
	if len(reps) < 2 {
		return
	}
	med := func(f func(Result) float64) float64 {
		vs := make([]float64, len(reps))
		for i, x := range reps {
			vs[i] = f(x)
		}
		slices.Sort(vs)
		if len(vs)%2 == 1 {
			return vs[len(vs)/2]
		}
		return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
	}
	r.Details.Repeats = r.Details.Repeats[:0]
	for _, x := range reps {
		r.Details.Repeats = append(r.Details.Repeats, Repeat{Raw: x.RawConsumeEventsPerSec, Serve: x.EventsPerSec,
			Process: x.ProcessEventsPerSec, Naive: x.NaiveEventsPerSec, Pipe: x.PipeCeilingEventsPerSec, EventsPerRecord: x.EventsPerRecord,
			Stability: x.ServeLastTenthOverFirst, Restore: x.RestoreSeconds, RestartRestore: x.RestartRestoreSeconds})
	}
	r.RawConsumeEventsPerSec = med(func(x Result) float64 { return x.RawConsumeEventsPerSec })
	r.EventsPerSec = med(func(x Result) float64 { return x.EventsPerSec })
	r.ProcessEventsPerSec = med(func(x Result) float64 { return x.ProcessEventsPerSec })
	r.NaiveEventsPerSec = med(func(x Result) float64 { return x.NaiveEventsPerSec })
	r.PipeCeilingEventsPerSec = med(func(x Result) float64 { return x.PipeCeilingEventsPerSec })
	r.EventsPerRecord = med(func(x Result) float64 { return x.EventsPerRecord })
	r.LatencyP50Ms = med(func(x Result) float64 { return x.LatencyP50Ms })
	r.LatencyP99Ms = med(func(x Result) float64 { return x.LatencyP99Ms })
	r.LatencyCatchupSeconds = med(func(x Result) float64 { return x.LatencyCatchupSeconds })
	r.ServeRSSBytesPerMember = med(func(x Result) float64 { return x.ServeRSSBytesPerMember })
	r.StateBytesPerMember = med(func(x Result) float64 { return x.StateBytesPerMember })
	r.ServeLastTenthOverFirst = med(func(x Result) float64 { return x.ServeLastTenthOverFirst })
	r.RestoreSeconds = med(func(x Result) float64 { return x.RestoreSeconds })
	r.RestoreMembersPerSec = med(func(x Result) float64 { return x.RestoreMembersPerSec })
	r.RestartRestoreSeconds = med(func(x Result) float64 { return x.RestartRestoreSeconds })
}

// loadAvg1 is the 1-minute load average of a loadAvg text, or -1.
func loadAvg1(s string) float64 {
	f := strings.Fields(s)
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}
