package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/state"
)

// histFeed builds input records with increasing offsets per topic.
type histFeed struct{ offs map[string]int64 }

func (f *histFeed) rec(kind engine.Kind, key string, value any) engine.Record {
	if f.offs == nil {
		f.offs = map[string]int64{}
	}
	var v []byte
	if value != nil {
		var err error
		if v, err = json.Marshal(value); err != nil {
			panic(err)
		}
	}
	topic := "sg." + string(kind)
	r := engine.Record{Kind: kind, Topic: topic, Key: []byte(key), Value: v, Offset: f.offs[topic]}
	f.offs[topic]++
	return r
}

func (f *histFeed) profile(member, ts string, profile map[string]any) engine.Record {
	return f.rec(engine.KindProfiles, "acme/"+member, map[string]any{"spot": "acme", "member": member, "ts": ts, "profile": profile})
}

func (f *histFeed) erase(member string) engine.Record {
	return f.rec(engine.KindProfiles, "acme/"+member, nil)
}

func (f *histFeed) activity(member, ts, id string) engine.Record {
	return f.rec(engine.KindActivities, "acme/"+member, map[string]any{"spot": "acme", "member": member, "ts": ts, "id": id,
		"type": "attended_live", "resource": map[string]any{"id": "live-1"}})
}

func (f *histFeed) group(id string, rule string) engine.Record {
	return f.rec(engine.KindDefinitions, "acme/group/"+id, map[string]any{"kind": "group", "spot": "acme", "id": id,
		"type": "smart", "name": id, "rule": json.RawMessage(rule)})
}

func (f *histFeed) blacklist(group, member string, on bool) engine.Record {
	var v any
	if on {
		v = map[string]any{"kind": "blacklist", "spot": "acme", "group": group, "member": member}
	}
	return f.rec(engine.KindDefinitions, "acme/blacklist/"+group+"/"+member, v)
}

func openHistoryEngine(t testing.TB, dir string, bound int, deferred bool) (*engine.Engine, *state.Store) {
	t.Helper()
	st, err := state.Open(dir, state.Options{})
	require.NoError(t, err)
	cfg := engine.DefaultConfig()
	cfg.Limits.HistoryPerMember = bound
	cfg.Changelog, cfg.DeferPartitionWrites = deferred, deferred
	eng, err := engine.New(st, cfg)
	require.NoError(t, err)
	_, err = eng.Assign(context.Background(), []int32{0})
	require.NoError(t, err)
	return eng, st
}

// processAcked processes records as one batch in process mode and
// acknowledges its outbox entries.
func processAcked(t *testing.T, eng *engine.Engine, recs ...engine.Record) {
	t.Helper()
	res, err := eng.Process(context.Background(), recs)
	require.NoError(t, err)
	for _, o := range res.Outbox {
		require.NoError(t, eng.Ack(o.Partition, o.ID))
	}
}

func history(t *testing.T, eng *engine.Engine, member, group string) []engine.HistoryEntry {
	t.Helper()
	page, err := eng.MemberHistory("acme", member, group, 0, 1000)
	require.NoError(t, err)
	return page.Items
}

type histRow struct {
	Group  string
	Op     engine.Op
	Reason engine.Reason
	Seq    uint64
	Cause  string
}

func rows(t *testing.T, hs []engine.HistoryEntry) []histRow {
	t.Helper()
	out := []histRow{}
	for _, h := range hs {
		c, err := json.Marshal(h.Cause)
		require.NoError(t, err)
		out = append(out, histRow{h.Group, h.Op, h.Reason, h.Seq, string(c)})
	}
	return out
}

// TestHistoryCauses follows one member through a record, time, a rule
// change, a blacklist entry and its removal: each transition is kept,
// newest first, with its cause.
func TestHistoryCauses(t *testing.T) {
	for _, deferred := range []bool{false, true} {
		t.Run(fmt.Sprintf("deferred=%v", deferred), func(t *testing.T) {
			eng, st := openHistoryEngine(t, t.TempDir(), 100, deferred)
			defer func() { _ = st.Close() }()
			var f histFeed
			run := func(recs ...engine.Record) *engine.Result {
				res, err := eng.Process(context.Background(), recs)
				require.NoError(t, err)
				for _, o := range res.Outbox {
					if deferred {
						// serve persists only after the commit; some
						// batches stay unpersisted here, and reads must
						// see them all the same.
						if o.ID%2 == 0 {
							require.NoError(t, eng.Persist(o.Partition, o.ID, engine.NoSnapshotTag))
						}
					} else {
						require.NoError(t, eng.Ack(o.Partition, o.ID))
					}
				}
				return res
			}
			run(f.group("vips", `{"field":"profile.tags","op":"has_any","value":["vip"]}`),
				f.group("live", `{"activity":"attended_live","when":{"within_last":{"days":1}}}`))
			run(f.profile("u1", "2026-11-01T10:00:00Z", map[string]any{"status": "accepted", "tags": []string{"vip"}}))
			run(f.activity("u1", "2026-11-01T11:00:00Z", "a1"))
			x, err := eng.ExplainMember("acme", "live", "u1")
			require.NoError(t, err)
			require.True(t, x.InGroup)
			require.Equal(t, "2026-11-01T11:00:00.000Z", x.Since)
			// Another member's record moves the event clock two days on:
			// u1's live membership expires.
			run(f.profile("u2", "2026-11-03T12:00:00Z", map[string]any{"status": "accepted"}))
			run(f.group("vips", `{"field":"profile.tags","op":"has_any","value":["gold"]}`))
			run(f.group("vips", `{"field":"profile.tags","op":"has_any","value":["vip"]}`))
			run(f.blacklist("vips", "u1", true))
			run(f.blacklist("vips", "u1", false))

			got := rows(t, history(t, eng, "u1", ""))
			want := []histRow{
				{"vips", engine.OpAdd, engine.ReasonBlacklist, 5, `{"definition":"vips"}`},
				{"vips", engine.OpRemove, engine.ReasonBlacklist, 4, `{"definition":"vips"}`},
				{"vips", engine.OpAdd, engine.ReasonDefinition, 3, `{"definition":"vips"}`},
				{"vips", engine.OpRemove, engine.ReasonDefinition, 2, `{"definition":"vips"}`},
				{"live", engine.OpRemove, engine.ReasonTime, 2, `{"timer":true}`},
				{"live", engine.OpAdd, engine.ReasonRule, 1, `{"topic":"sg.activities","partition":0,"offset":0}`},
				{"vips", engine.OpAdd, engine.ReasonEligibility, 1, `{"topic":"sg.profiles","partition":0,"offset":0}`},
			}
			require.Equal(t, want, got)
			require.Equal(t, want[4:6], rows(t, history(t, eng, "u1", "live")))

			// Pages follow each other without a gap or a repeat.
			var paged []engine.HistoryEntry
			before := uint64(0)
			for {
				page, err := eng.MemberHistory("acme", "u1", "", before, 3)
				require.NoError(t, err)
				paged = append(paged, page.Items...)
				if page.Next == 0 {
					break
				}
				before = page.Next
			}
			require.Equal(t, want, rows(t, paged))

			info, err := eng.MemberInfo("acme", "u1")
			require.NoError(t, err)
			require.Equal(t, []engine.MemberGroup{{Group: "vips", Seq: 5, Since: "2026-11-03T12:00:00.000Z"}}, info.Groups)
			require.Equal(t, engine.TypeSummary{Count: 1, First: "2026-11-01T11:00:00.000Z", Last: "2026-11-01T11:00:00.000Z"},
				info.Activities.ByType["attended_live"])
			require.Len(t, info.History, len(want))

			// Erasure deletes the history with the member, in the store too.
			run(f.erase("u1"))
			_, err = eng.MemberHistory("acme", "u1", "", 0, 10)
			require.True(t, errors.Is(err, engine.ErrUnknownMember), "history of an erased member: %v", err)
			run(f.profile("u1", "2026-11-04T00:00:00Z", map[string]any{"status": "accepted", "tags": []string{"vip"}}))
			got = rows(t, history(t, eng, "u1", ""))
			require.Equal(t, []histRow{{"vips", engine.OpAdd, engine.ReasonEligibility, 7, `{"topic":"sg.profiles","partition":0,"offset":3}`}}, got,
				"after erasure and re-creation only the new transition is there")
		})
	}
}

// TestHistoryBoundAndErasureInStore checks the store itself: a member's
// history keys are trimmed to the bound, and erasure leaves none.
func TestHistoryBoundAndErasureInStore(t *testing.T) {
	dir := t.TempDir()
	eng, st := openHistoryEngine(t, dir, 3, false)
	var f histFeed
	run := func(recs ...engine.Record) { processAcked(t, eng, recs...) }
	count := func() int {
		n := 0
		pp := state.PartitionPrefix(0)
		require.NoError(t, st.Scan(pp, state.PrefixEnd(pp), func(k, _ []byte) bool {
			if _, sub, _ := state.PartitionOfKey(k); sub == state.SubHistory {
				n++
			}
			return true
		}))
		return n
	}
	run(f.group("vips", `{"field":"profile.tags","op":"has_any","value":["vip"]}`))
	for i, tags := range [][]string{{"vip"}, {}, {"vip"}, {}, {"vip"}} {
		run(f.profile("u1", fmt.Sprintf("2026-11-01T10:00:0%dZ", i), map[string]any{"status": "accepted", "tags": tags}))
	}
	require.Equal(t, 3, count())
	hs := history(t, eng, "u1", "vips")
	require.Len(t, hs, 3)
	require.Equal(t, []uint64{5, 4, 3}, []uint64{hs[0].Seq, hs[1].Seq, hs[2].Seq})
	run(f.erase("u1"))
	require.Equal(t, 0, count(), "erasure leaves history keys")
	require.NoError(t, st.Close())

	// A restart with a smaller bound shows the newest transitions only.
	eng, st = openHistoryEngine(t, dir, 1, false)
	defer func() { _ = st.Close() }()
	run(f.profile("u2", "2026-11-02T10:00:00Z", map[string]any{"status": "accepted", "tags": []string{"vip"}}))
	require.Len(t, history(t, eng, "u2", ""), 1)
}

// TestHistoryOneKeyPerBatch: the transitions of a member in one batch go
// into one history key, whatever their number, and the keys whose
// entries are all older than the bound are deleted as newer ones come,
// while the history shows exactly the newest bound transitions.
func TestHistoryOneKeyPerBatch(t *testing.T) {
	dir := t.TempDir()
	eng, st := openHistoryEngine(t, dir, 4, false)
	defer func() { _ = st.Close() }()
	var f histFeed
	run := func(recs ...engine.Record) { processAcked(t, eng, recs...) }
	// keys returns the numbers of u1's history keys (its ordinal is 0, the
	// first member of the spot) and the entries they hold.
	keys := func() (ns []uint64, entries int) {
		hp := state.HistoryPrefix(0, "acme", 0)
		require.NoError(t, st.Scan(hp, state.PrefixEnd(hp), func(k, v []byte) bool {
			ns = append(ns, state.HistoryN(k))
			entries += engine.HistoryEntriesOf(v)
			return true
		}))
		return ns, entries
	}
	for _, g := range []string{"a", "b", "c"} {
		run(f.group(g, `{"field":"profile.tags","op":"has_any","value":["`+g+`","all"]}`))
	}
	flip := func(ts string, tags ...string) {
		run(f.profile("u1", ts, map[string]any{"status": "accepted", "tags": tags}))
	}
	flip("2026-11-01T10:00:00Z", "all")
	ns, n := keys()
	require.Equal(t, []uint64{1}, ns, "three joins in one batch: one key")
	require.Equal(t, 3, n)
	flip("2026-11-01T11:00:00Z")
	ns, n = keys()
	require.Equal(t, []uint64{1, 4}, ns, "the first key still holds the 3rd transition, within the bound of 4")
	require.Equal(t, 6, n)
	flip("2026-11-01T12:00:00Z", "all")
	ns, n = keys()
	require.Equal(t, []uint64{4, 7}, ns, "transitions 1-3 are out of the bound: their key is deleted")
	require.Equal(t, 6, n)
	hs := history(t, eng, "u1", "")
	require.Len(t, hs, 4, "the history shows the newest bound transitions")
	require.Equal(t, "2026-11-01T12:00:00.000Z", hs[0].TS, "newest first")
	require.Equal(t, "2026-11-01T11:00:00.000Z", hs[3].TS)
	info, err := eng.MemberInfo("acme", "u1")
	require.NoError(t, err)
	require.Len(t, info.Groups, 3)
	for _, g := range info.Groups {
		require.Equal(t, "2026-11-01T12:00:00.000Z", g.Since, "since of %s", g.Group)
	}
}

// TestHistoryRestored checks that a partition restored from the changelog
// has the same history and since instants as the original.
func TestHistoryRestored(t *testing.T) {
	a, sa := openHistoryEngine(t, t.TempDir(), 100, true)
	defer func() { _ = sa.Close() }()
	var f histFeed
	var log []engine.ChangelogEntry
	run := func(recs ...engine.Record) {
		res, err := a.Process(context.Background(), recs)
		require.NoError(t, err)
		for _, o := range res.Outbox {
			log = append(log, o.Changelog...)
			require.NoError(t, a.Persist(o.Partition, o.ID, engine.NoSnapshotTag))
		}
	}
	defs := []engine.Record{f.group("vips", `{"field":"profile.tags","op":"has_any","value":["vip"]}`)}
	run(defs...)
	run(f.profile("u1", "2026-11-01T10:00:00Z", map[string]any{"status": "accepted", "tags": []string{"vip"}}))
	run(f.profile("u1", "2026-11-01T11:00:00Z", map[string]any{"tags": []string{}}))
	run(f.profile("u1", "2026-11-01T12:00:00Z", map[string]any{"tags": []string{"vip"}}))
	want, err := a.MemberInfo("acme", "u1")
	require.NoError(t, err)
	require.Len(t, want.History, 3)

	sb, err := state.Open(t.TempDir(), state.Options{})
	require.NoError(t, err)
	defer func() { _ = sb.Close() }()
	cfg := engine.DefaultConfig()
	cfg.Changelog, cfg.DeferPartitionWrites = true, true
	b, err := engine.New(sb, cfg)
	require.NoError(t, err)
	_, err = b.Process(context.Background(), defs)
	require.NoError(t, err)
	require.NoError(t, b.RestorePartition(0, log, engine.NoSnapshotTag, true))
	res, err := b.Assign(context.Background(), []int32{0})
	require.NoError(t, err)
	require.Empty(t, res.Events)
	got, err := b.MemberInfo("acme", "u1")
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.Equal(t, "2026-11-01T12:00:00.000Z", got.Groups[0].Since)
}

// TestHistoryDisabled: with a bound of 0 nothing is written for the
// history (no entry, no since instant), and erasing a member whose history
// an earlier run kept still deletes it.
func TestHistoryDisabled(t *testing.T) {
	dir := t.TempDir()
	var f histFeed
	run := func(eng *engine.Engine, recs ...engine.Record) { processAcked(t, eng, recs...) }
	keys := func(st *state.Store) int {
		n := 0
		pp := state.PartitionPrefix(0)
		require.NoError(t, st.Scan(pp, state.PrefixEnd(pp), func(k, _ []byte) bool {
			if _, sub, _ := state.PartitionOfKey(k); sub == state.SubHistory || sub == state.SubSince {
				n++
			}
			return true
		}))
		return n
	}
	eng, st := openHistoryEngine(t, dir, 100, false)
	run(eng, f.group("vips", `{"field":"profile.tags","op":"has_any","value":["vip"]}`))
	run(eng, f.profile("u1", "2026-11-01T10:00:00Z", map[string]any{"status": "accepted", "tags": []string{"vip"}}))
	require.Equal(t, 1, keys(st), "one history key (the since instant is in the state)")
	require.NoError(t, st.Close())

	eng, st = openHistoryEngine(t, dir, 0, false)
	defer func() { _ = st.Close() }()
	run(eng, f.profile("u2", "2026-11-01T11:00:00Z", map[string]any{"status": "accepted", "tags": []string{"vip"}}))
	require.Equal(t, 1, keys(st), "nothing written for u2")
	page, err := eng.MemberHistory("acme", "u2", "", 0, 10)
	require.NoError(t, err)
	require.Empty(t, page.Items)
	info, err := eng.MemberInfo("acme", "u2")
	require.NoError(t, err)
	require.Len(t, info.Groups, 1)
	require.Empty(t, info.Groups[0].Since, "no since instant without history")
	run(eng, f.erase("u1"))
	require.Equal(t, 0, keys(st), "u1's history is erased")
}

// BenchmarkRecordPathHistory measures what the membership history costs
// the record path in steady state: the same community (20k members, 200
// groups, loaded without history so that both start from the same store),
// then the same records with the history off and with its default bound,
// in process mode (synced batches of 1000 records).
func BenchmarkRecordPathHistory(b *testing.B) {
	for _, bound := range []int{0, 100} {
		b.Run(fmt.Sprintf("bound=%d", bound), func(b *testing.B) {
			const members, groups = 20_000, 200
			dir := b.TempDir()
			eng, st := openHistoryEngine(b, dir, 0, false)
			loadSpot(b, eng, "bench", members, groups)
			require.NoError(b, st.Close())
			eng, st = openHistoryEngine(b, dir, bound, false)
			defer func() { _ = st.Close() }()
			r := rand.New(rand.NewSource(2))
			recs := make([]engine.Record, b.N)
			for i := range recs {
				recs[i] = synthRecord(r, "bench", members, i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < len(recs); i += 1000 {
				res, err := eng.Process(context.Background(), recs[i:min(i+1000, len(recs))])
				if err != nil {
					b.Fatal(err)
				}
				ackAll(b, eng, res)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
