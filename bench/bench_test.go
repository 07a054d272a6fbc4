package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/smartgroups/smartgroups/engine"
)

var contractFields = []string{
	"raw_consume_events_per_sec", "events_per_sec", "process_events_per_sec", "naive_events_per_sec",
	"latency_p50_ms", "latency_p99_ms", "backfill_members_per_sec", "backfill_scan_members_per_sec",
	"peak_rss_bytes", "state_bytes_per_member", "members", "groups", "events",
}

// TestRunTiny runs the whole harness on a tiny community and checks that
// the JSON line has exactly the contract's fields, with plausible values.
func TestRunTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker and serve")
	}
	o := DefaultOptions()
	o.Community.Members, o.Community.Groups, o.Community.Events = 300, 24, 1500
	o.LatencyDuration = 2 * time.Second
	o.DataDir = t.TempDir()
	var log bytes.Buffer
	o.Log = &log
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
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
		"backfill_members_per_sec", "backfill_scan_members_per_sec", "peak_rss_bytes", "state_bytes_per_member"} {
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
	if d.ServeEvents == 0 || d.ProcessEvents == 0 || d.NaiveEvents == 0 {
		t.Errorf("no membership events: serve %d, process %d, naive %d", d.ServeEvents, d.ProcessEvents, d.NaiveEvents)
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
	if ds.LoadRecords != 2*500 || ds.LiveRecords != 5000 {
		t.Fatalf("dataset = %+v", ds)
	}
	buf.Write(live.Bytes())
	n := NewNaive()
	kinds := map[engine.NodeKind]bool{}
	timeGroups := 0
	for i, line := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		var l Line
		if err := json.Unmarshal(line, &l); err != nil {
			t.Fatal(err)
		}
		k, _ := engine.ParseKind(l.Topic)
		n.Apply(Record{Kind: k, Key: l.Key, Value: l.Value}.EngineRecord(int64(i)))
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
			var walk func(*engine.Node)
			walk = func(x *engine.Node) {
				kinds[x.Kind] = true
				for _, ch := range x.Children {
					walk(ch)
				}
			}
			walk(r.Root)
		}
	}
	for _, k := range []engine.NodeKind{engine.NodeAll, engine.NodeAny, engine.NodeNot, engine.NodeField, engine.NodeActivity, engine.NodeGroup} {
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
