package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"testing"

	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/state"
)

// TestRecordPathReadsNothing checks that, once a partition is assigned,
// processing member records, firing timers, backfilling a new group and
// answering queries read nothing from the store: all of it is served by
// the partition's in-memory state.
func TestRecordPathReadsNothing(t *testing.T) {
	const members, groups = 2000, 40
	st, err := state.Open(t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := engine.DefaultConfig()
	cfg.Clock, cfg.Now, cfg.Changelog = engine.ClockEvent, benchNow, true
	eng, err := engine.New(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := eng.Assign(ctx, []int32{0}); err != nil {
		t.Fatal(err)
	}
	loadSpot(t, eng, "bench", members, groups)
	before := st.Reads()

	r := rand.New(rand.NewSource(3))
	var recs []engine.Record
	for i := range 5000 {
		recs = append(recs, synthRecord(r, "bench", members, i))
	}
	events := 0
	for i := 0; i < len(recs); i += 500 {
		res, err := eng.Process(ctx, recs[i:i+500])
		if err != nil {
			t.Fatal(err)
		}
		events += len(res.Events)
		ackAll(t, eng, res)
	}
	// Forty days later: time-window groups flip through their timers.
	later, _ := json.Marshal(map[string]any{"spot": "bench", "member": "u1", "ts": benchNow + 40*24*3600*1000,
		"profile": map[string]any{"title": "later"}})
	rule, _ := json.Marshal(map[string]any{"kind": "group", "spot": "bench", "id": "new", "type": "smart", "name": "New",
		"rule": map[string]any{"activity": "opened_document", "count": map[string]int{"gte": 1}}})
	res, err := eng.Process(ctx, []engine.Record{
		{Kind: engine.KindProfiles, Topic: "profiles", Key: []byte("bench/u1"), Value: later},
		{Kind: engine.KindDefinitions, Topic: "definitions", Key: []byte("bench/group/new"), Value: rule},
	})
	if err != nil {
		t.Fatal(err)
	}
	ackAll(t, eng, res)
	fired := 0
	for _, ev := range res.Events {
		if ev.Reason == engine.ReasonTime {
			fired++
		}
	}
	if events == 0 || fired == 0 || len(res.Events) == fired {
		t.Fatalf("%d events, then %d by timers of %d: the test exercises too little", events, fired, len(res.Events))
	}

	page, err := eng.QueryMembers(ctx, []int32{0}, engine.MemberQuery{Spot: "bench",
		Rule: json.RawMessage(`{"activity":"attended_live","count":{"gte":1}}`), Limit: 10})
	if err != nil || page.Total == 0 {
		t.Fatalf("query: %+v, %v", page, err)
	}
	if _, err := eng.GroupCounts([]int32{0}, "bench"); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.DiffRule(ctx, []int32{0}, "bench", "g0", json.RawMessage(`{"field":"profile.tags","op":"has_any","value":["tag1"]}`), 10); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := eng.ExplainMember("bench", "g1", fmt.Sprintf("u%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := st.Reads() - before; n != 0 {
		t.Fatalf("%d store reads after the partition was assigned, want none", n)
	}
}
