package engine_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/engine/rule"
	"github.com/smartgroups/smartgroups/internal/scenario"
	"github.com/smartgroups/smartgroups/state"
)

func openEngine(t *testing.T, now rule.Millis) *engine.Engine {
	t.Helper()
	st, err := state.Open(t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	cfg := engine.DefaultConfig()
	cfg.Clock, cfg.Now = engine.ClockFixed, now
	cfg.Changelog = true
	eng, err := engine.New(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

func processAll(t *testing.T, eng *engine.Engine, recs []engine.Record, batch int) (events []engine.Event, log []engine.ChangelogEntry, tombs []string) {
	t.Helper()
	for i := 0; i < len(recs); i += batch {
		res, err := eng.Process(context.Background(), recs[i:min(i+batch, len(recs))])
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, res.Events...)
		for _, o := range res.Outbox {
			log = append(log, o.Changelog...)
			tombs = append(tombs, o.DefinitionTombstones...)
			if err := eng.Ack(o.Partition, o.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	return events, log, tombs
}

// TestRestoreFromChangelog checks that a partition restored on another
// store from the changelog of the first continues exactly as the original:
// same events (so same seqs, memberships, timers and positions) and the
// same posting-list answers (checked through backfills of new groups).
func TestRestoreFromChangelog(t *testing.T) {
	for seed := int64(1); seed <= 6; seed++ {
		cfg := scenario.DefaultConfig()
		cfg.Records = 1200
		lines := scenario.Generate(seed, cfg)
		recs := make([]engine.Record, len(lines))
		for i, l := range lines {
			recs[i] = l.Record(int64(i))
		}
		half := len(recs) / 2
		// A late group over every member exercises the rebuilt posting lists.
		late, _ := json.Marshal(map[string]any{"kind": "group", "spot": "acme", "id": "late", "type": "smart", "name": "Late",
			"rule": map[string]any{"any": []any{
				map[string]any{"field": "profile.status", "op": "in", "value": []string{"accepted", "pending"}},
				map[string]any{"activity": "attended_live", "count": map[string]int{"gte": 1}}}}})
		rest := append(append([]engine.Record(nil), recs[half:]...),
			engine.Record{Kind: engine.KindDefinitions, Topic: "definitions", Key: []byte("acme/group/late"), Value: late, Offset: int64(len(recs))})

		a := openEngine(t, cfg.Now)
		if _, err := a.Assign(context.Background(), []int32{0}); err != nil {
			t.Fatal(err)
		}
		// One record per batch, so the definitions another instance would
		// read (including blacklist tombstones published on erasure) can be
		// replayed in the order they reached the definitions topic.
		var log []engine.ChangelogEntry
		var defs []engine.Record
		for _, r := range recs[:half] {
			_, l, tombs := processAll(t, a, []engine.Record{r}, 1)
			log = append(log, l...)
			if r.Kind == engine.KindDefinitions {
				defs = append(defs, r)
			}
			for _, k := range tombs {
				defs = append(defs, engine.Record{Kind: engine.KindDefinitions, Topic: "definitions", Key: []byte(k)})
			}
		}
		wantEvents, _, _ := processAll(t, a, rest, 50)

		b := openEngine(t, cfg.Now)
		// As on the definitions topic, every record has its own offset.
		for i := range defs {
			defs[i].Offset = int64(i - len(defs)) // below the offsets of the second half
		}
		processAll(t, b, defs, 50)
		if err := b.RestorePartition(0, log, engine.NoSnapshotTag, true); err != nil {
			t.Fatal(err)
		}
		res, err := b.Assign(context.Background(), []int32{0})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Events) != 0 {
			t.Fatalf("seed %d: assign after restore emitted %d events; the restored state should be current", seed, len(res.Events))
		}
		gotEvents, _, _ := processAll(t, b, rest, 50)
		g, _ := json.Marshal(gotEvents)
		w, _ := json.Marshal(wantEvents)
		for i := range wantEvents {
			if i < len(gotEvents) && gotEvents[i] != wantEvents[i] {
				t.Logf("first difference at %d:\n got  %+v\n want %+v", i, gotEvents[i], wantEvents[i])
				break
			}
		}
		if string(g) != string(w) {
			t.Fatalf("seed %d: restored partition diverged:\n got  %d events\n want %d events", seed, len(gotEvents), len(wantEvents))
		}
		if len(wantEvents) == 0 {
			t.Fatalf("seed %d: no events in the second half; the test checks nothing", seed)
		}
	}
}
