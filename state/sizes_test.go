package state_test

import (
	"testing"

	"github.com/smartgroups/smartgroups/state"
)

func TestSizesRetention(t *testing.T) {
	st, err := state.Open(t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	const minute = 60_000
	var pts []state.SizePoint
	for _, g := range []string{"g1", "g2", "g10"} {
		for m := int64(0); m < 10; m++ {
			pts = append(pts, state.SizePoint{Spot: "acme", Group: g, Partition: int32(m % 2), TS: m * minute, Members: uint64(m)})
		}
	}
	pts = append(pts, state.SizePoint{Spot: "globex", Group: "g1", Partition: 0, TS: 3 * minute, Members: 7})
	if err := st.WriteSizes(pts); err != nil {
		t.Fatal(err)
	}
	read := func(spot, g string, from, to int64) []state.SizePoint {
		var out []state.SizePoint
		if err := st.ReadSizes(spot, g, from, to, func(p state.SizePoint) { out = append(out, p) }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := read("acme", "g1", 2*minute, 4*minute); len(got) != 3 || got[0].TS != 2*minute || got[2].Members != 4 || got[1].Partition != 1 {
		t.Fatalf("acme g1 minutes 2..4: %+v", got)
	}
	if got := read("acme", "g1", 0, 100*minute); len(got) != 10 {
		t.Fatalf("acme g1 has %d points, want 10 (g10's are another group)", len(got))
	}
	if err := st.DeleteSizesBefore(5 * minute); err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"g1", "g2", "g10"} {
		got := read("acme", g, 0, 100*minute)
		if len(got) != 5 || got[0].TS != 5*minute {
			t.Fatalf("after retention, acme %s: %+v", g, got)
		}
	}
	if got := read("globex", "g1", 0, 100*minute); len(got) != 0 {
		t.Fatalf("globex's old point survived retention: %+v", got)
	}
}
