package engine_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/engine/rule"
	"github.com/smartgroups/smartgroups/internal/process"
	"github.com/smartgroups/smartgroups/internal/reference"
	"github.com/smartgroups/smartgroups/internal/scenario"
)

// TestModelBased feeds random scenarios (every record kind, rule updates,
// blacklists, erasures, invalid records) through the whole `process`
// pipeline and through the naive reference evaluator, and compares the
// final memberships and access to linked resources, the dead-lettered
// records and the well-formedness of every output key's event sequence
// (memberships and access).
func TestModelBased(t *testing.T) {
	seeds := 40
	if testing.Short() {
		seeds = 8
	}
	for seed := int64(1); seed <= int64(seeds); seed++ {
		for _, mode := range []struct {
			name  string
			fixed bool
			batch int
			span  rule.Millis
		}{{"fixed-now/batch1000", true, 1000, 0}, {"event-clock/batch1", false, 1, 0}, {"event-clock/batch64", false, 64, 0},
			// Time moves through the stream: windows close between
			// records and timers fire mid-stream.
			{"event-clock/advancing/batch64", false, 64, 40 * 24 * 3600 * 1000}} {
			t.Run(fmt.Sprintf("seed=%d/%s", seed, mode.name), func(t *testing.T) {
				t.Parallel()
				cfg := scenario.DefaultConfig()
				cfg.Records = 1500
				cfg.Spots = 1 + int(seed%3)
				cfg.MembersPerSpot = 10 + int(seed%4)*10
				cfg.Span = mode.span
				runModel(t, seed, cfg, mode.fixed, mode.batch)
			})
		}
	}
}

func runModel(t *testing.T, seed int64, cfg scenario.Config, fixed bool, batch int) {
	t.Helper()
	lines := scenario.Generate(seed, cfg)
	var in bytes.Buffer
	if err := scenario.WriteNDJSON(&in, lines); err != nil {
		t.Fatal(err)
	}
	ref := reference.New(cfg.Now, !fixed)
	for i, l := range lines {
		ref.Apply(l.Record(int64(i)))
	}
	if p := ref.Problems(); len(p) > 0 {
		t.Fatalf("reference problems: %v", p)
	}
	var out, dead, access bytes.Buffer
	opts := process.Options{BatchSize: batch, Now: cfg.Now, HasNow: fixed}
	if !fixed {
		// The event clock starts at the scenario's now, like the reference.
		opts = process.Options{BatchSize: batch}
	}
	opts.Access = &access
	if _, err := process.Run(context.Background(), opts, bytes.NewReader(in.Bytes()), &out, &dead); err != nil {
		t.Fatal(err)
	}
	got := checkEvents(t, out.Bytes())
	want := ref.Memberships()
	if !fixed {
		// The engine's event clock starts at 0 rather than cfg.Now; both end
		// at the largest ts seen, which exceeds cfg.Now in every scenario.
		if ref.Now() <= cfg.Now {
			t.Skip("scenario has no ts after its now")
		}
	}
	t.Logf("%d lines, %d final memberships, %d dead letters, now %s", len(lines), len(want), len(ref.DeadLettered()), rule.FormatMillis(ref.Now()))
	compareSets(t, got, want)
	gotAccess := checkAccess(t, access.Bytes())
	wantAccess := map[string]bool{}
	for k := range ref.Access() {
		wantAccess[k] = true
	}
	t.Logf("%d access events, %d final grants", bytes.Count(access.Bytes(), []byte("\n")), len(wantAccess))
	compareSets(t, gotAccess, wantAccess)
	compareDead(t, dead.Bytes(), ref.DeadLettered())
}

// checkAccess verifies per-key well-formedness of the access events (seq
// +1, grant and revoke alternating from grant, a grant naming the groups
// that give it, a revoke none) and returns the keys with access at the end.
func checkAccess(t *testing.T, out []byte) map[string]bool {
	t.Helper()
	type keyState struct {
		seq uint64
		in  bool
	}
	keys := map[string]*keyState{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev engine.AccessEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("access line %q: %v", sc.Text(), err)
		}
		k := ev.Key()
		ks := keys[k]
		if ks == nil {
			ks = &keyState{}
			keys[k] = ks
		}
		grant := ev.Op == engine.OpGrant
		if ev.Seq != ks.seq+1 || grant == ks.in || grant != (len(ev.Groups) > 0) || ev.Groups == nil {
			t.Fatalf("access key %s: %s", k, sc.Text())
		}
		ks.seq, ks.in = ev.Seq, grant
	}
	got := map[string]bool{}
	for k, ks := range keys {
		if ks.in {
			got[k] = true
		}
	}
	return got
}

// checkEvents verifies per-key well-formedness and returns the final set.
func checkEvents(t *testing.T, out []byte) map[string]bool {
	t.Helper()
	type keyState struct {
		seq uint64
		in  bool
	}
	keys := map[string]*keyState{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev engine.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("output line %q: %v", sc.Text(), err)
		}
		k := ev.Key()
		ks := keys[k]
		if ks == nil {
			ks = &keyState{}
			keys[k] = ks
		}
		if ev.Seq != ks.seq+1 {
			t.Fatalf("key %s: seq %d after %d", k, ev.Seq, ks.seq)
		}
		if (ev.Op == engine.OpAdd) == ks.in {
			t.Fatalf("key %s: %s while in=%v (seq %d)", k, ev.Op, ks.in, ev.Seq)
		}
		ks.seq, ks.in = ev.Seq, ev.Op == engine.OpAdd
	}
	got := map[string]bool{}
	for k, ks := range keys {
		if ks.in {
			got[k] = true
		}
	}
	return got
}

func compareSets(t *testing.T, got, want map[string]bool) {
	t.Helper()
	var extra, missing []string
	for k := range got {
		if !want[k] {
			extra = append(extra, k)
		}
	}
	for k := range want {
		if !got[k] {
			missing = append(missing, k)
		}
	}
	slices.Sort(extra)
	slices.Sort(missing)
	if len(extra)+len(missing) > 0 {
		t.Fatalf("memberships differ from the reference (%d members expected):\n engine only: %v\n reference only: %v", len(want), extra, missing)
	}
	if len(want) == 0 {
		t.Logf("scenario ended with no memberships")
	}
}

func compareDead(t *testing.T, dead []byte, want []int64) {
	t.Helper()
	var got []int64
	sc := bufio.NewScanner(bytes.NewReader(dead))
	sc.Buffer(nil, 8<<20)
	for sc.Scan() {
		var d engine.DeadLetter
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			t.Fatalf("dead letter %q: %v", sc.Text(), err)
		}
		if d.Reason == "" {
			t.Fatalf("dead letter without a reason: %s", sc.Text())
		}
		got = append(got, d.Offset)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("dead-lettered offsets differ:\n engine:    %v\n reference: %v", got, want)
	}
}
