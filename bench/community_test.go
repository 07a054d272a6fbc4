package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/smartgroups/smartgroups/connectors/file"
	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/internal/process"
)

// TestCommunityGroupsAreDistinct checks that groups of one template draw
// their own operands: nearly every rule differs from every other.
func TestCommunityGroupsAreDistinct(t *testing.T) {
	c := NewCommunity(CommunityConfig{Members: 100, Groups: 1000, Events: 10})
	rules := map[string]int{}
	templates := map[string]int{}
	for _, r := range c.Definitions() {
		var v struct {
			ID   string          `json:"id"`
			Type string          `json:"type"`
			Rule json.RawMessage `json:"rule"`
		}
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatal(err)
		}
		if v.Type != "smart" {
			continue
		}
		rules[string(v.Rule)]++
		tpl := c.GroupTemplate(v.ID)
		if tpl == "" {
			t.Fatalf("group %s has no template", v.ID)
		}
		templates[tpl]++
	}
	if len(templates) != timeTemplates+plainTemplates {
		t.Errorf("%d templates used, want %d", len(templates), timeTemplates+plainTemplates)
	}
	most := 0
	for _, n := range rules {
		most = max(most, n)
	}
	if len(rules) < 900 || most > 4 {
		t.Errorf("1000 groups hold %d distinct rules, the most repeated %d times; want ≥ 900 and ≤ 4", len(rules), most)
	}
}

// TestCommunityRetriesAreRealRetries checks that a producer retry repeats
// the same member's own earlier activity byte for byte, and that the
// engine drops exactly those: the output with the retries is the output
// without them.
func TestCommunityRetriesAreRealRetries(t *testing.T) {
	c := NewCommunity(CommunityConfig{Members: 300, Groups: 60, Events: 8000})
	var load, live bytes.Buffer
	if _, err := c.WriteDataset(&load, &live); err != nil {
		t.Fatal(err)
	}
	if c.Retries() < 20 {
		t.Fatalf("%d retries in the stream", c.Retries())
	}
	type act struct {
		Spot, Member, ID string
	}
	seen := map[act][]byte{}
	ids := map[string]act{}
	var withoutRetries bytes.Buffer
	retries := 0
	for _, line := range bytes.SplitAfter(append(load.Bytes(), live.Bytes()...), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		rec := file.Decode(bytes.TrimSpace(line), 0)
		if rec.Err != "" {
			t.Fatal(rec.Err)
		}
		if rec.Kind == engine.KindActivities {
			var a act
			if err := json.Unmarshal(rec.Value, &a); err != nil {
				t.Fatal(err)
			}
			if prev, ok := seen[a]; ok {
				if !bytes.Equal(prev, rec.Value) {
					t.Fatalf("activity id %s of %s/%s reused with another value:\n%s\n%s", a.ID, a.Spot, a.Member, prev, rec.Value)
				}
				retries++
				continue
			}
			seen[a] = bytes.Clone(rec.Value)
			if other, ok := ids[a.ID]; ok {
				t.Fatalf("activity id %s used by %s/%s and %s/%s", a.ID, other.Spot, other.Member, a.Spot, a.Member)
			}
			ids[a.ID] = a
		}
		withoutRetries.Write(line)
	}
	if retries != c.Retries() {
		t.Fatalf("found %d repeated activities, the generator made %d retries", retries, c.Retries())
	}
	run := func(in []byte) string {
		var out, dead bytes.Buffer
		st, err := process.Run(context.Background(), process.Options{DataDir: t.TempDir()}, bytes.NewReader(in), &out, &dead)
		if err != nil {
			t.Fatal(err)
		}
		if st.DeadLetters != 0 {
			t.Fatalf("%d dead letters: %s", st.DeadLetters, dead.String())
		}
		if st.Events == 0 {
			t.Fatal("no events")
		}
		return out.String()
	}
	all := append(load.Bytes(), live.Bytes()...)
	got, want := run(all), run(withoutRetries.Bytes())
	if got != want {
		t.Errorf("retries changed the output: %d lines with them, %d without", strings.Count(got, "\n"), strings.Count(want, "\n"))
	}
}

// TestModesSeeSameWork runs serve (event clock), file mode and the naive
// evaluator over the same records and checks that they end the live
// stream with the same memberships: they evaluated the same rules at the
// same instants. The order of intermediate flips may differ across
// partitions and topics; the final table may not.
func TestModesSeeSameWork(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker and serve")
	}
	o := DefaultOptions()
	o.Community.Members, o.Community.Groups, o.Community.Events = 400, 48, 4000
	o.NaiveEvents, o.ProcessEvents = -1, -1
	o.LatencyDuration = time.Second
	o.DataDir = t.TempDir()
	var log bytes.Buffer
	o.Log = &log
	o.normalize()
	r := &runner{o: o, res: &Result{}, keepFinal: true}
	r.log = func(format string, args ...any) { fmt.Fprintf(&log, format+"\n", args...) }
	r.dir = o.DataDir
	r.res.Events, r.res.Members = o.Community.Events, o.Community.Members
	r.res.Details.PhaseCPU = map[string]time.Duration{}
	defer r.closeBroker()
	ctx := context.Background()
	for _, step := range []func(context.Context) error{r.generate, r.startBroker, r.topics, r.serveLoad, r.produceLive,
		r.process, r.naive, r.serve} {
		if err := step(ctx); err != nil {
			t.Fatalf("%v\n%s", err, log.String())
		}
	}
	if len(r.finalProcess) == 0 {
		t.Fatal("file mode ends with no membership")
	}
	for name, got := range map[string]map[string]bool{"serve": r.finalServe, "naive": r.finalNaive} {
		var missing, extra []string
		for k := range r.finalProcess {
			if !got[k] {
				missing = append(missing, k)
			}
		}
		for k := range got {
			if !r.finalProcess[k] {
				extra = append(extra, k)
			}
		}
		if len(missing)+len(extra) > 0 {
			t.Errorf("%s ends with %d memberships, file mode with %d: %d missing (%.5v), %d extra (%.5v)", name, len(got),
				len(r.finalProcess), len(missing), missing, len(extra), extra)
		}
	}
	if r.res.EventsPerRecord <= 0 || r.res.Details.ServeEvents == 0 {
		t.Errorf("serve: %d events, %.2f per record", r.res.Details.ServeEvents, r.res.EventsPerRecord)
	}
}
