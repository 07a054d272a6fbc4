package engine_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/smartgroups/smartgroups/bench"
	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/state"
)

// BenchmarkPartitionMemory measures the heap an owned partition's
// in-memory state takes per member, on the bench harness's community with
// 1,000 smart groups: each member's initial profile and properties, then
// three live records per member, through Process. The heap is read with
// the partition freshly loaded (revoked and assigned again) and after
// Revoke drops its in-memory state; the difference per member is
// reported. Run it with -benchtime 1x.
func BenchmarkPartitionMemory(b *testing.B) {
	for _, members := range []int{20_000} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			var perMember float64
			for b.Loop() {
				perMember = partitionMemory(b, members, 1000)
			}
			b.ReportMetric(perMember, "heap-bytes/member")
		})
	}
}

func partitionMemory(b *testing.B, members, groups int) float64 {
	st, err := state.Open(b.TempDir(), state.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	cfg := engine.DefaultConfig()
	eng, err := engine.New(st, cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := eng.Assign(ctx, []int32{0}); err != nil {
		b.Fatal(err)
	}
	c := bench.NewCommunity(bench.CommunityConfig{Members: members, Groups: groups, Events: 3 * members})
	var recs []engine.Record
	for i, r := range c.Definitions() {
		recs = append(recs, r.EngineRecord(int64(i)))
	}
	for i := range members {
		p, q := c.Initial(0, i)
		recs = append(recs, p.EngineRecord(0), q.EngineRecord(0))
	}
	for range 3 * members {
		recs = append(recs, c.NextLive().EngineRecord(0))
	}
	for i := 0; i < len(recs); i += 1000 {
		res, err := eng.Process(ctx, recs[i:min(i+1000, len(recs))])
		if err != nil {
			b.Fatal(err)
		}
		ackAll(b, eng, res)
	}
	recs = nil
	// Assign again after a revoke: the state is then exactly what loading
	// the partition builds.
	eng.Revoke([]int32{0})
	if _, err := eng.Assign(ctx, []int32{0}); err != nil {
		b.Fatal(err)
	}
	loaded := heapAlloc()
	eng.Revoke([]int32{0})
	dropped := heapAlloc()
	runtime.KeepAlive(eng)
	return float64(int64(loaded)-int64(dropped)) / float64(members)
}

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
