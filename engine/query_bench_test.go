package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/state"
)

// BenchmarkPreview measures a preview (exact count and first page of 50,
// sorted by name) over a spot of 1M members (SMARTGROUPS_BENCH_MEMBERS
// overrides), loaded through Process into a temporary store. Sub-benchmarks:
// a rule the posting lists narrow to ~1% of the members, one they cannot
// narrow at all (every eligible member is evaluated), and one narrowed by
// a smart group's membership set. members/s is the spot's size divided by
// the time of one preview.
func BenchmarkPreview(b *testing.B) {
	members := 1_000_000
	if s := os.Getenv("SMARTGROUPS_BENCH_MEMBERS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		members = n
	}
	st, err := state.Open(b.TempDir(), state.Options{CacheBytes: 256 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	cfg := engine.DefaultConfig()
	cfg.Clock, cfg.Now = engine.ClockFixed, benchNow
	eng, err := engine.New(st, cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := eng.Assign(ctx, []int32{0}); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if _, err := eng.Process(ctx, synthSpot("bench", 8)); err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewSource(1))
	batch := make([]engine.Record, 0, 5000)
	for i := 0; i < members; i++ {
		batch = append(batch, synthMember(r, "bench", i))
		if len(batch) == cap(batch) || i == members-1 {
			res, err := eng.Process(ctx, batch)
			if err != nil {
				b.Fatal(err)
			}
			ackAll(b, eng, res)
			batch = batch[:0]
		}
	}
	b.Logf("loaded %d members in %v", members, time.Since(start).Round(time.Millisecond))

	cases := []struct{ name, rule string }{
		{"narrowed", `{"all":[{"field":"profile.tags","op":"has_any","value":["tag7"]},{"field":"profile.language","op":"eq","value":"fr"}]}`},
		{"scan", `{"field":"profile.email","op":"contains","value":"@corp3."}`},
		{"group", `{"all":[{"group":"g0"},{"not":{"field":"profile.role","op":"eq","value":"admin"}}]}`},
	}
	for _, c := range cases {
		b.Run(fmt.Sprintf("%s/members=%d", c.name, members), func(b *testing.B) {
			b.ReportAllocs()
			var page *engine.MemberPage
			for i := 0; i < b.N; i++ {
				page, err = eng.QueryMembers(ctx, []int32{0}, engine.MemberQuery{Spot: "bench", Rule: json.RawMessage(c.rule), Limit: 50})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if page.Total == 0 || len(page.Members) != min(50, page.Total) {
				b.Fatalf("preview returned %d of %d", len(page.Members), page.Total)
			}
			b.ReportMetric(float64(members)*float64(b.N)/b.Elapsed().Seconds(), "members/s")
			b.ReportMetric(float64(page.Total), "matches")
		})
	}
}
