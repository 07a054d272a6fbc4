package httpapi

import (
	"testing"
	"time"
)

func TestSumSizes(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	at := func(min int) int64 { return t0.Add(time.Duration(min) * time.Minute).UnixMilli() }
	// Instance A recorded partition 0 (changes at minutes 0 and 3) and
	// partition 1 until it moved at minute 2; instance B recorded
	// partition 1 from minute 2 (the same minute twice, around the move).
	a := []sizePart{{0, at(0), 10}, {0, at(3), 12}, {1, at(0), 5}, {1, at(2), 6}}
	b := []sizePart{{1, at(2), 7}, {1, at(4), 8}}
	got := sumSizes([][]sizePart{a, b}, t0, t0.Add(5*time.Minute))
	want := []uint64{15, 15, 17, 19, 20, 20}
	if len(got) != len(want) {
		t.Fatalf("got %d points %+v, want %d", len(got), got, len(want))
	}
	for i, p := range got {
		if p.Members != want[i] || p.TS != time.UnixMilli(at(i)).UTC().Format(time.RFC3339) {
			t.Errorf("minute %d: %+v, want %d members", i, p, want[i])
		}
	}

	// A point stands for at most sizeCarry: after that the minutes have
	// no value (nobody recorded), and before the first point neither.
	got = sumSizes([][]sizePart{{{0, at(10), 3}}}, t0, t0.Add(200*time.Minute))
	if len(got) == 0 || got[0].TS != time.UnixMilli(at(10)).UTC().Format(time.RFC3339) {
		t.Fatalf("first point: %+v", got)
	}
	last, _ := time.Parse(time.RFC3339, got[len(got)-1].TS)
	if d := last.Sub(t0.Add(10 * time.Minute)); d >= sizeCarry || d < sizeCarry-time.Minute {
		t.Errorf("a point is carried for %v, want just under %v", d, sizeCarry)
	}
}
