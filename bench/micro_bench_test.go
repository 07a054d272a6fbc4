package bench

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/engine/rule"
	"github.com/smartgroups/smartgroups/state"
)

// loadedNaive returns a naive evaluator loaded with a generated community
// and the records that loaded it.
func loadedNaive(tb testing.TB, members, groups, events int) (*Naive, *Community, []engine.Record) {
	tb.Helper()
	c := NewCommunity(CommunityConfig{Members: members, Groups: groups, Events: events})
	var buf, live bytes.Buffer
	if _, err := c.WriteDataset(&buf, &live); err != nil {
		tb.Fatal(err)
	}
	buf.Write(live.Bytes())
	n := NewNaive()
	recs := decodeLines(tb, buf.Bytes())
	for _, rec := range recs {
		n.Apply(rec)
	}
	return n, c, recs
}

// BenchmarkDecodeMember decodes generated member records of each topic
// with engine.DecodeMember (validation against the declared schemas
// included).
func BenchmarkDecodeMember(b *testing.B) {
	n, _, recs := loadedNaive(b, 2000, 50, 20000)
	byKind := map[engine.Kind][]engine.Record{}
	for _, r := range recs {
		if r.Kind != engine.KindDefinitions {
			byKind[r.Kind] = append(byKind[r.Kind], r)
		}
	}
	lim := engine.DefaultLimits()
	for _, k := range []engine.Kind{engine.KindProfiles, engine.KindActivities, engine.KindProperties} {
		rs := byKind[k]
		b.Run(string(k), func(b *testing.B) {
			b.ReportAllocs()
			bytes := 0
			for i := 0; b.Loop(); i++ {
				r := rs[i%len(rs)]
				bytes += len(r.Value)
				if _, rerr := engine.DecodeMember(r, lim, n.Defs()); rerr != nil {
					b.Fatal(rerr.Reason)
				}
			}
			b.ReportMetric(float64(bytes)/float64(b.N), "value-bytes/op")
		})
	}
}

// BenchmarkEval evaluates every smart group of the spot for a member, as
// the naive baseline does on each record (rule.Eval over an in-memory
// member view). ns/op is per member; ns/eval per rule.
func BenchmarkEval(b *testing.B) {
	for _, groups := range []int{100, 1000} {
		b.Run(fmt.Sprintf("groups=%d", groups), func(b *testing.B) {
			n, c, _ := loadedNaive(b, 2000, groups, 40000)
			spot := c.Spots()[0]
			sd := n.Defs().Spot(spot)
			var ms []*naiveMember
			for i := 0; i < c.SpotMembers(0); i++ {
				if m := n.members[spot+"/"+memberID(i)]; m != nil {
					ms = append(ms, m)
				}
			}
			order := sd.Order()
			now := n.Now()
			b.ReportAllocs()
			evals := 0
			for i := 0; b.Loop(); i++ {
				m := ms[i%len(ms)]
				for _, g := range order {
					if _, err := rule.Eval(sd.Groups[g].Compiled(), m, now); err != nil {
						b.Fatal(err)
					}
					evals++
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(evals), "ns/eval")
		})
	}
	b.Run("kind", func(b *testing.B) {
		n, c, _ := loadedNaive(b, 2000, 200, 40000)
		spot := c.Spots()[0]
		sd := n.Defs().Spot(spot)
		m := n.members[spot+"/"+memberID(0)] // the most active member
		now := n.Now()
		byKind := map[string][]*rule.Rule{}
		for _, g := range sd.Order() {
			r := sd.Groups[g].Compiled()
			k := "field"
			switch {
			case len(r.Groups) > 0:
				k = "group"
			case hasActivity(r.Root):
				k = "activity"
			}
			if r.TimeDependent {
				k += "+time"
			}
			byKind[k] = append(byKind[k], r)
		}
		for _, k := range []string{"field", "field+time", "activity", "activity+time", "group"} {
			rules := byKind[k]
			if len(rules) == 0 {
				continue
			}
			b.Run(k, func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; b.Loop(); i++ {
					if _, err := rule.Eval(rules[i%len(rules)], m, now); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	})
}

func hasActivity(n *rule.Node) bool {
	if n.Kind == rule.NodeActivity {
		return true
	}
	for _, c := range n.Children {
		if hasActivity(c) {
			return true
		}
	}
	return false
}

func randomBitmap(r *rand.Rand, universe int, density float64) *roaring.Bitmap {
	bm := roaring.New()
	n := int(float64(universe) * density)
	for bm.GetCardinality() < uint64(n) {
		bm.Add(uint32(r.IntN(universe)))
	}
	bm.RunOptimize()
	return bm
}

// BenchmarkPostingLists measures the roaring operations a backfill
// composes, on posting lists of realistic densities over a spot of 1M
// member ordinals: a rare tag (0.1%), a popular tag (5%), a status (70%).
func BenchmarkPostingLists(b *testing.B) {
	const universe = 1_000_000
	r := rand.New(rand.NewPCG(1, 2))
	rare, popular, status := randomBitmap(r, universe, 0.001), randomBitmap(r, universe, 0.05), randomBitmap(r, universe, 0.7)
	tags := make([]*roaring.Bitmap, 8)
	for i := range tags {
		tags[i] = randomBitmap(r, universe, 0.01)
	}
	b.Run("and/rare-status", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = roaring.And(rare, status)
		}
	})
	b.Run("and/popular-status", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = roaring.And(popular, status)
		}
	})
	b.Run("or/popular-status", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = roaring.Or(popular, status)
		}
	})
	b.Run("fastor/8-tags", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = roaring.FastOr(tags...)
		}
	})
	b.Run("serialize/status", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := status.ToBytes(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("delta/add-remove", func(b *testing.B) {
		// One batch's posting delta: a few ordinals added and removed.
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			adds, removes := roaring.New(), roaring.New()
			adds.Add(uint32(i % universe))
			removes.Add(uint32((i * 7) % universe))
			if _, err := state.EncodePostingDelta(adds, removes); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkBatchCommit commits a realistic batch of 1000 records' writes
// with Sync: member states, activities and their ids, posting-list deltas,
// per-key seqs and input positions.
func BenchmarkBatchCommit(b *testing.B) {
	st, err := state.Open(b.TempDir(), state.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	r := rand.New(rand.NewPCG(3, 4))
	memberValue := bytes.Repeat([]byte("x"), 600)
	b.ReportAllocs()
	total := 0
	for i := 0; b.Loop(); i++ {
		batch := st.NewBatch()
		for j := 0; j < 1000; j++ {
			ord := uint32(r.IntN(100_000))
			must(b, batch.Set(state.MemberKey(0, "spot00", ord), memberValue))
			if j%100 < 85 {
				must(b, batch.Set(state.ActivityKey(0, "spot00", ord, "opened_document", int64(1_790_000_000_000+i*1000+j), uint32(j)), []byte("doc-042")))
				must(b, batch.Set(state.ActivityIDKey(0, "spot00", ord, fmt.Sprintf("e%d-%d", i, j)), nil))
			}
			if j%3 == 0 {
				must(b, batch.Set(state.SeqKey(0, "spot00", memberID(int(ord)), fmt.Sprintf("g%04d", j%200)), []byte{1}))
			}
		}
		for t := 0; t < 200; t++ {
			adds, removes := roaring.New(), roaring.New()
			adds.Add(uint32(r.IntN(100_000)))
			removes.Add(uint32(r.IntN(100_000)))
			v, err := state.EncodePostingDelta(adds, removes)
			must(b, err)
			must(b, batch.MergePosting(state.PostingKey(0, "spot00", fmt.Sprintf("g:g%04d", t)), v))
		}
		for _, topic := range []string{"profiles", "activities", "properties"} {
			must(b, batch.Set(state.PositionKey(0, topic), state.EncodeU32(uint32(i))))
		}
		total += batch.Len()
		must(b, batch.Commit())
	}
	b.ReportMetric(float64(total)/float64(b.N), "batch-bytes/op")
}

func must(b *testing.B, err error) {
	if err != nil {
		b.Fatal(err)
	}
}
