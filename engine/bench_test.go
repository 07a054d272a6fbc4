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

const benchNow = int64(1795600000000) // 2026-11-25

// synthSpot builds the definitions of a spot with n smart groups using
// every trigger kind, round-robin.
func synthSpot(spot string, groups int) []engine.Record {
	var recs []engine.Record
	def := func(key string, v any) {
		b, _ := json.Marshal(v)
		recs = append(recs, engine.Record{Kind: engine.KindDefinitions, Topic: "definitions", Key: []byte(spot + "/" + key), Value: b})
	}
	def("property/plan", map[string]any{"kind": "property", "spot": spot, "id": "plan", "label": "Plan", "type": "single_select",
		"options": []map[string]string{{"id": "free", "label": "Free"}, {"id": "pro", "label": "Pro"}, {"id": "team", "label": "Team"}}})
	def("property/seats", map[string]any{"kind": "property", "spot": spot, "id": "seats", "label": "Seats", "type": "number"})
	def("group/static-1", map[string]any{"kind": "group", "spot": spot, "id": "static-1", "type": "static", "name": "Static"})
	for i := 0; i < groups; i++ {
		var rule any
		switch i % 8 {
		case 0:
			rule = map[string]any{"field": "profile.tags", "op": "has_any", "value": []string{fmt.Sprintf("tag%d", i%50)}}
		case 1:
			rule = map[string]any{"activity": "attended_live", "resources": []string{fmt.Sprintf("live-%d", i%20)},
				"when": map[string]any{"within_last": map[string]int{"days": 30}}}
		case 2:
			rule = map[string]any{"all": []any{
				map[string]any{"field": "custom.plan", "op": "in", "value": []string{"pro", "team"}},
				map[string]any{"field": "custom.seats", "op": "gte", "value": i % 10}}}
		case 3:
			rule = map[string]any{"any": []any{
				map[string]any{"field": "profile.language", "op": "eq", "value": "fr"},
				map[string]any{"field": "profile.email", "op": "ends_with", "value": fmt.Sprintf("@corp%d.com", i%5)}}}
		case 4:
			rule = map[string]any{"activity": "completed_course", "count": map[string]int{"gte": 2}}
		case 5:
			rule = map[string]any{"all": []any{map[string]any{"group": fmt.Sprintf("g%d", i-5)},
				map[string]any{"not": map[string]any{"field": "profile.role", "op": "eq", "value": "admin"}}}}
		case 6:
			rule = map[string]any{"all": []any{map[string]any{"group": "static-1"},
				map[string]any{"field": "profile.registered_at", "op": "more_than_ago", "value": map[string]int{"days": 7 + i%30}}}}
		case 7:
			rule = map[string]any{"field": "profile.status", "op": "in", "value": []string{"accepted"}}
		}
		def(fmt.Sprintf("group/g%d", i), map[string]any{"kind": "group", "spot": spot, "id": fmt.Sprintf("g%d", i), "type": "smart",
			"name": fmt.Sprintf("Group %d", i), "rule": rule})
	}
	return recs
}

// synthRecord returns a random member record of a realistic mix.
func synthRecord(r *rand.Rand, spot string, members int, seq int) engine.Record {
	m := fmt.Sprintf("u%d", r.Intn(members))
	ts := benchNow - int64(r.Intn(60*24*3600))*1000
	var kind engine.Kind
	var v map[string]any
	switch x := r.Intn(10); {
	case x < 3:
		kind = engine.KindProfiles
		v = map[string]any{"profile": map[string]any{"tags": []string{fmt.Sprintf("tag%d", r.Intn(50)), fmt.Sprintf("tag%d", r.Intn(50))},
			"language": []string{"fr", "en", "de"}[r.Intn(3)]}}
	case x < 8:
		kind = engine.KindActivities
		typ := []string{"attended_live", "completed_course", "opened_document"}[r.Intn(3)]
		v = map[string]any{"id": fmt.Sprintf("e%d", seq), "type": typ, "resource": map[string]string{"id": fmt.Sprintf("live-%d", r.Intn(20))}}
	default:
		kind = engine.KindProperties
		v = map[string]any{"custom": map[string]any{"plan": []string{"free", "pro", "team"}[r.Intn(3)], "seats": r.Intn(20)}}
	}
	v["spot"], v["member"], v["ts"] = spot, m, ts
	b, _ := json.Marshal(v)
	return engine.Record{Kind: kind, Topic: string(kind), Key: []byte(spot + "/" + m), Value: b}
}

func synthMember(r *rand.Rand, spot string, i int) engine.Record {
	m := fmt.Sprintf("u%d", i)
	v := map[string]any{"spot": spot, "member": m, "ts": benchNow - 90*24*3600*1000, "profile": map[string]any{
		"first_name": fmt.Sprintf("First%d", i), "last_name": fmt.Sprintf("Last%d", i),
		"email":  fmt.Sprintf("u%d@corp%d.com", i, r.Intn(10)),
		"status": []string{"accepted", "accepted", "accepted", "invited", "pending", "deactivated"}[r.Intn(6)],
		"role":   []string{"member", "member", "admin"}[r.Intn(3)], "language": []string{"fr", "en"}[r.Intn(2)],
		"tags":          []string{fmt.Sprintf("tag%d", r.Intn(50))},
		"registered_at": benchNow - int64(r.Intn(365*24*3600))*1000, "static_groups": []string{"static-1"},
	}}
	b, _ := json.Marshal(v)
	return engine.Record{Kind: engine.KindProfiles, Topic: "profiles", Key: []byte(spot + "/" + m), Value: b}
}

func loadSpot(tb testing.TB, eng *engine.Engine, spot string, members, groups int) {
	ctx := context.Background()
	r := rand.New(rand.NewSource(1))
	if _, err := eng.Process(ctx, synthSpot(spot, groups)); err != nil {
		tb.Fatal(err)
	}
	batch := make([]engine.Record, 0, 1000)
	for i := 0; i < members; i++ {
		batch = append(batch, synthMember(r, spot, i))
		if len(batch) == cap(batch) || i == members-1 {
			res, err := eng.Process(ctx, batch)
			if err != nil {
				tb.Fatal(err)
			}
			ackAll(tb, eng, res)
			batch = batch[:0]
		}
	}
}

// ackAll acknowledges (or, under DeferPartitionWrites, persists) every
// outbox entry of res, as a runtime does once the output is published.
func ackAll(tb testing.TB, eng *engine.Engine, res *engine.Result) {
	for _, o := range res.Outbox {
		var err error
		switch {
		case o.Partition != engine.DefPartition && eng.Unpersisted(o.Partition) > 0:
			if len(o.Changelog) > 0 {
				err = eng.Persist(o.Partition, o.ID, engine.NoSnapshotTag)
			}
		default:
			err = eng.Ack(o.Partition, o.ID)
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkRecordPath measures the incremental record path on a spot of
// 100k members and 200 smart groups: records/s and allocations per record,
// batches of 1000 records committed with Sync.
func BenchmarkRecordPath(b *testing.B) { benchmarkRecordPath(b, false) }

// BenchmarkRecordPathDeferred is BenchmarkRecordPath as serve runs the
// engine: the batch's writes are deferred until the runtime's commit, then
// persisted without sync (Config.DeferPartitionWrites).
func BenchmarkRecordPathDeferred(b *testing.B) { benchmarkRecordPath(b, true) }

func benchmarkRecordPath(b *testing.B, deferred bool) {
	const members, groups = 100_000, 200
	st, err := state.Open(b.TempDir(), state.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	cfg := engine.DefaultConfig()
	cfg.Clock, cfg.Now = engine.ClockFixed, benchNow
	if deferred {
		cfg.Changelog, cfg.DeferPartitionWrites = true, true
	}
	eng, err := engine.New(st, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := eng.Assign(context.Background(), []int32{0}); err != nil {
		b.Fatal(err)
	}
	loadSpot(b, eng, "bench", members, groups)
	r := rand.New(rand.NewSource(2))
	recs := make([]engine.Record, b.N)
	for i := range recs {
		recs[i] = synthRecord(r, "bench", members, i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	events := 0
	for i := 0; i < len(recs); i += 1000 {
		j := min(i+1000, len(recs))
		res, err := eng.Process(context.Background(), recs[i:j])
		if err != nil {
			b.Fatal(err)
		}
		events += len(res.Events)
		ackAll(b, eng, res)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(events)/float64(b.N), "events/record")
}
