package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"sort"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/smartgroups/smartgroups/connectors/file"
	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/engine/rule"
)

var contractFields = []string{
	"raw_consume_events_per_sec", "events_per_sec", "process_events_per_sec", "naive_events_per_sec",
	"latency_p50_ms", "latency_p99_ms", "backfill_members_per_sec", "backfill_scan_members_per_sec",
	"peak_rss_bytes", "state_bytes_per_member", "members", "groups", "events",
	"events_per_record", "pipe_ceiling_events_per_sec", "serve_rss_bytes_per_member", "load_average",
	"serve_last_tenth_over_first", "restore_seconds", "restore_members_per_sec", "restart_restore_seconds",
	"latency_timer_catchup_seconds",
}

// TestRunTiny runs the whole harness on a tiny community and checks that
// the JSON line has exactly the contract's fields, with plausible values.
// runSmall runs the benchmark in a temporary directory, failing the test
// with the run's progress log on error.
func runSmall(t *testing.T, o Options) *Result {
	t.Helper()
	o.DataDir = t.TempDir()
	var log bytes.Buffer
	o.Log = &log
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	return res
}

func TestRunTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker and serve")
	}
	o := DefaultOptions()
	o.Community.Members, o.Community.Groups, o.Community.Events = 300, 24, 1500
	o.NaiveEvents = 1000 // a prefix; file mode takes the whole stream
	o.LatencyDuration = 2 * time.Second
	res := runSmall(t, o)
	var out bytes.Buffer
	if err := res.WriteJSON(&out); err != nil {
		t.Fatal(err)
	}
	if strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("JSON output is not one line: %q", out.String())
	}
	var m map[string]float64
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatalf("JSON output %q: %v", out.String(), err)
	}
	var got []string
	for k := range m {
		got = append(got, k)
	}
	sort.Strings(got)
	want := append([]string(nil), contractFields...)
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("JSON fields:\n got %v\nwant %v", got, want)
	}
	for _, k := range []string{"raw_consume_events_per_sec", "events_per_sec", "process_events_per_sec", "naive_events_per_sec",
		"backfill_members_per_sec", "backfill_scan_members_per_sec", "peak_rss_bytes", "state_bytes_per_member",
		"events_per_record", "pipe_ceiling_events_per_sec", "restore_seconds", "restore_members_per_sec", "restart_restore_seconds"} {
		if m[k] <= 0 {
			t.Errorf("%s = %v, want > 0", k, m[k])
		}
	}
	if m["members"] != 300 || m["groups"] != 24 || m["events"] != 1500 {
		t.Errorf("parameters = %v/%v/%v, want 300/24/1500", m["members"], m["groups"], m["events"])
	}
	if m["latency_p50_ms"] <= 0 || m["latency_p99_ms"] < m["latency_p50_ms"] {
		t.Errorf("latency p50 %v p99 %v", m["latency_p50_ms"], m["latency_p99_ms"])
	}
	d := res.Details
	if d.ProcessDeadLetters != 0 {
		t.Errorf("file mode dead-lettered %d generated records", d.ProcessDeadLetters)
	}
	if d.NaiveRecords != 1000 || d.ProcessRecords != 1500 {
		t.Errorf("naive timed over %d live records, file mode over %d; want 1000 and 1500", d.NaiveRecords, d.ProcessRecords)
	}
	if d.NaiveMembers == 0 || d.NaiveMembers >= 300 {
		t.Errorf("naive loaded %d members, want those the prefix touches", d.NaiveMembers)
	}
	if d.ServeEvents == 0 || d.ProcessEvents == 0 || d.NaiveEvents == 0 {
		t.Errorf("no membership events: serve %d, process %d, naive %d", d.ServeEvents, d.ProcessEvents, d.NaiveEvents)
	}
	if d.RestoreMembers != 300 || d.RestoreRecords <= 0 {
		t.Errorf("the restore on an empty data dir took over %d members from %.0f changelog records, want 300 from some", d.RestoreMembers, d.RestoreRecords)
	}
	if d.RestartRestoreRecords >= d.RestoreRecords {
		t.Errorf("the restart on the data dir read %.0f changelog records, the full restore %.0f: the snapshot was not used",
			d.RestartRestoreRecords, d.RestoreRecords)
	}
	if d.BackfillScanEvals <= d.BackfillIndexedEvals {
		t.Errorf("the scan backfill evaluated %d members, the indexed one %d: the index did not narrow", d.BackfillScanEvals, d.BackfillIndexedEvals)
	}
	var table bytes.Buffer
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, k := range contractFields[:10] {
		if !strings.Contains(table.String(), k) {
			t.Errorf("table lacks %s:\n%s", k, table.String())
		}
	}
}

// TestTenthMarks checks the timing of the first and the last tenth of a
// stream from scrapes of a consumed counter: a serve that halves its rate
// halfway through has a last tenth twice as long as its first.
func TestTenthMarks(t *testing.T) {
	const want = 2000.0
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	began := t0.Add(10 * time.Millisecond) // between two scrapes
	// 1000 records/s up to 1000 records, then 500/s.
	consumed := func(at time.Time) float64 {
		s := at.Sub(began).Seconds()
		switch {
		case s <= 0:
			return 0
		case s <= 1:
			return 1000 * s
		}
		return min(1000+500*(s-1), want)
	}
	m := newTenthMarks(want)
	var first time.Time
	prevAt, prevV := t0, 0.0
	for at := t0.Add(25 * time.Millisecond); prevV < want; at = at.Add(25 * time.Millisecond) {
		v := consumed(at)
		if v != prevV {
			if first.IsZero() {
				first = prevAt.Add(at.Sub(prevAt) / 2)
			}
			m.observe(latest(prevAt, first), prevV, at, v)
		}
		prevAt, prevV = at, v
	}
	ft, lt := m.tenths(first)
	// 200 records at 1000/s, 200 at 500/s; the start and the end are
	// known to within one scrape interval.
	if ft < 175*time.Millisecond || ft > 225*time.Millisecond || lt < 375*time.Millisecond || lt > 425*time.Millisecond {
		t.Fatalf("first tenth %s, last tenth %s; want 200ms and 400ms", ft, lt)
	}
	if r := (catchUp{firstTenth: ft, lastTenth: lt}).stability(); r < 0.45 || r > 0.55 {
		t.Errorf("last over first = %.3f, want 0.5", r)
	}
	if _, lt := newTenthMarks(want).tenths(first); lt != 0 {
		t.Errorf("tenths without observations: %s", lt)
	}
}

// TestMedianOfRepeats checks that --repeat reports the median of each
// repetition's throughput stability and restore times, and lists each.
func TestMedianOfRepeats(t *testing.T) {
	reps := []Result{
		{EventsPerSec: 100, ServeLastTenthOverFirst: 0.9, RestoreSeconds: 4, RestoreMembersPerSec: 250, RestartRestoreSeconds: 1},
		{EventsPerSec: 300, ServeLastTenthOverFirst: 0.5, RestoreSeconds: 2, RestoreMembersPerSec: 500, RestartRestoreSeconds: 3},
		{EventsPerSec: 200, ServeLastTenthOverFirst: 0.7, RestoreSeconds: 8, RestoreMembersPerSec: 125, RestartRestoreSeconds: 2},
	}
	r := reps[2]
	r.median(reps)
	if r.EventsPerSec != 200 || r.ServeLastTenthOverFirst != 0.7 || r.RestoreSeconds != 4 || r.RestoreMembersPerSec != 250 ||
		r.RestartRestoreSeconds != 2 {
		t.Errorf("medians: %+v", r)
	}
	if len(r.Details.Repeats) != 3 || r.Details.Repeats[1].Stability != 0.5 || r.Details.Repeats[2].Restore != 8 {
		t.Errorf("repetitions: %+v", r.Details.Repeats)
	}
}

// TestCommunityValid checks that every generated record is valid (the
// naive evaluator, which uses the engine's decoders and definition
// checks, dead-letters none) and that the groups cover every trigger kind.
func TestCommunityValid(t *testing.T) {
	c := NewCommunity(CommunityConfig{Members: 500, Groups: 120, Events: 5000, Spots: 2})
	var buf, live bytes.Buffer
	ds, err := c.WriteDataset(&buf, &live)
	if err != nil {
		t.Fatal(err)
	}
	if ds.LoadRecords != 2*500+ds.History || ds.History < 1000 || ds.LiveRecords != 5000 {
		t.Fatalf("dataset = %+v", ds)
	}
	buf.Write(live.Bytes())
	n := NewNaive()
	kinds := map[rule.NodeKind]bool{}
	timeGroups := 0
	for _, rec := range decodeLines(t, buf.Bytes()) {
		n.Apply(rec)
	}
	if n.DeadLetters != 0 {
		t.Fatalf("%d generated records were dead-lettered", n.DeadLetters)
	}
	for _, spot := range c.Spots() {
		sd := n.Defs().Spot(spot)
		if got := len(sd.Order()); got != 60 {
			t.Errorf("spot %s has %d smart groups, want 60", spot, got)
		}
		for _, g := range sd.Order() {
			r := sd.Groups[g].Compiled()
			if r.TimeDependent {
				timeGroups++
			}
			var walk func(*rule.Node)
			walk = func(x *rule.Node) {
				kinds[x.Kind] = true
				for _, ch := range x.Children {
					walk(ch)
				}
			}
			walk(r.Root)
		}
	}
	for _, k := range []rule.NodeKind{rule.NodeAll, rule.NodeAny, rule.NodeNot, rule.NodeField, rule.NodeActivity, rule.NodeGroup} {
		if !kinds[k] {
			t.Errorf("no rule uses node kind %v", k)
		}
	}
	if timeGroups < 20 || timeGroups > 30 {
		t.Errorf("%d of 120 groups are time-dependent, want about 20%%", timeGroups)
	}
	if n.Events == 0 {
		t.Error("no membership flips")
	}
}

// TestNaiveLoadThenEvaluate checks the naive phase's shortcut: loading
// only the members a live prefix touches, without evaluating, then
// evaluating each once gives the same flips and evaluations over the
// prefix as evaluating every initial-load record of every member (then
// every member once at the load's clock).
func TestNaiveLoadThenEvaluate(t *testing.T) {
	c := NewCommunity(CommunityConfig{Members: 400, Groups: 60, Events: 3000})
	var load, live bytes.Buffer
	if _, err := c.WriteDataset(&load, &live); err != nil {
		t.Fatal(err)
	}
	lr, vr := decodeLines(t, load.Bytes()), decodeLines(t, live.Bytes())[:1000]
	touched := map[string]bool{}
	for _, r := range vr {
		touched[string(r.Key)] = true
	}
	full, short := NewNaive(), NewNaive()
	for _, r := range lr {
		full.Apply(r)
		if r.Kind == engine.KindDefinitions || touched[string(r.Key)] {
			short.Load(r)
		} else {
			short.Observe(r)
		}
	}
	// The history's records have older ts than the load's end: bring the
	// full evaluator's memberships up to that clock too, as timers would.
	full.EvaluateAll()
	short.EvaluateAll()
	if short.Members() != len(touched) || short.Members() >= full.Members() {
		t.Fatalf("short loaded %d members (touched %d), full %d", short.Members(), len(touched), full.Members())
	}
	fe, fv, se, sv := full.Events, full.Evals, short.Events, short.Evals
	for _, r := range vr {
		full.Apply(r)
		short.Apply(r)
	}
	if full.Events-fe != short.Events-se || full.Evals-fv != short.Evals-sv || full.Events == fe {
		t.Fatalf("over the prefix: full %d flips %d evaluations, short %d flips %d evaluations",
			full.Events-fe, full.Evals-fv, short.Events-se, short.Evals-sv)
	}
}

func TestLineLimiter(t *testing.T) {
	in := strings.Repeat("{\"a\":1}\n", 50)
	for _, n := range []int{0, 1, 7, 50, 80} {
		b, err := io.ReadAll(&lineLimiter{r: iotest.OneByteReader(strings.NewReader(in)), left: n})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := strings.Count(string(b), "\n"), min(n, 50); got != want || len(b) != want*8 {
			t.Errorf("limit %d: %d lines, %d bytes", n, got, len(b))
		}
	}
	if prefix(0, 200, 1000) != 200 || prefix(0, 200, 50) != 50 || prefix(-1, 200, 1000) != 1000 || prefix(300, 200, 1000) != 300 || prefix(3000, 200, 1000) != 1000 {
		t.Error("prefix")
	}
}

// TestRunServeOnly checks that ServeOnly measures serve and skips file
// mode, the backfill and the naive evaluator.
func TestRunServeOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker and serve")
	}
	o := DefaultOptions()
	o.Community.Members, o.Community.Groups, o.Community.Events = 200, 12, 500
	o.LatencyDuration = time.Second
	o.ServeOnly = true
	res := runSmall(t, o)
	if res.EventsPerSec <= 0 || res.RawConsumeEventsPerSec <= 0 || res.StateBytesPerMember <= 0 {
		t.Errorf("serve numbers missing: %+v", res)
	}
	if res.ProcessEventsPerSec != 0 || res.NaiveEventsPerSec != 0 || res.BackfillMembersPerSec != 0 {
		t.Errorf("skipped phases ran: %+v", res)
	}
	o.Postgres = "postgres://unused"
	if _, err := Run(context.Background(), o); err == nil {
		t.Error("ServeOnly with the PostgreSQL comparator: no error")
	}
}

// decodeLines decodes NDJSON input lines as `process` does.
func decodeLines(tb testing.TB, b []byte) []engine.Record {
	tb.Helper()
	var out []engine.Record
	for i, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		rec := file.Decode(line, int64(i))
		if rec.Err != "" {
			tb.Fatal(rec.Err)
		}
		out = append(out, rec)
	}
	return out
}
