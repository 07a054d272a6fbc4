package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/smartgroups/smartgroups/connectors/file"
	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/internal/process"
)

// addsPerGroup runs records through the engine (file mode, clock fixed at
// now) and counts the add events per "<spot>/<group>", and the access
// events per "<op> <resource>". Generated records must all be valid.
func addsPerGroup(t *testing.T, recs []Record, now time.Time) (adds, access map[string]int) {
	t.Helper()
	var in bytes.Buffer
	for _, r := range recs {
		k := r.Key
		line, err := json.Marshal(file.Line{Topic: string(r.Kind), Key: &k, Value: r.Value})
		if err != nil {
			t.Fatal(err)
		}
		in.Write(append(line, '\n'))
	}
	var out, dead, acc bytes.Buffer
	if _, err := process.Run(context.Background(), process.Options{Now: now.UnixMilli(), HasNow: true, Access: &acc}, &in, &out, &dead); err != nil {
		t.Fatal(err)
	}
	if dead.Len() > 0 {
		t.Fatalf("generated records were dead-lettered:\n%s", firstLines(dead.String(), 5))
	}
	adds, access = map[string]int{}, map[string]int{}
	dec := json.NewDecoder(&acc)
	for dec.More() {
		var ev engine.AccessEvent
		if err := dec.Decode(&ev); err != nil {
			t.Fatal(err)
		}
		access[string(ev.Op)+" "+ev.Resource]++
	}
	dec = json.NewDecoder(&out)
	for dec.More() {
		var ev engine.Event
		if err := dec.Decode(&ev); err != nil {
			t.Fatal(err)
		}
		if ev.Op == engine.OpAdd {
			adds[ev.Spot+"/"+ev.Group]++
		}
	}
	return adds, access
}

// smartGroups returns the "<spot>/<group>" of every smart group defined.
func smartGroups(t *testing.T, g *Generator) []string {
	t.Helper()
	var out []string
	for _, r := range g.Definitions() {
		var d struct{ Spot, ID, Type string }
		if err := json.Unmarshal(r.Value, &d); err != nil {
			t.Fatal(err)
		}
		if d.Type == "smart" {
			out = append(out, d.Spot+"/"+d.ID)
		}
	}
	return out
}

// TestCommunityIsLively runs a generated community through the engine and
// checks that every record is valid and that every smart group gets
// members, so the demo shows each trigger kind at work, and that every
// linked resource is granted (and those of smart groups revoked too).
func TestCommunityIsLively(t *testing.T) {
	g := New(Config{Spots: []string{"acme", "globex"}, Members: 300, Seed: 7})
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	recs := g.Definitions()
	recs = append(recs, g.Members(now)...)
	for i := 0; i < 20000; i++ {
		recs = append(recs, g.Next(now.Add(time.Duration(i)*time.Second)))
	}
	adds, access := addsPerGroup(t, recs, now.Add(6*time.Hour))
	for _, sg := range smartGroups(t, g) {
		if adds[sg] == 0 {
			t.Errorf("smart group %s never got a member", sg)
		}
	}
	for gid, rs := range linked {
		for _, r := range rs {
			// Static-group membership does not change in the demo: the
			// ambassadors' resources are granted, not revoked.
			if access["grant "+r["id"]] == 0 || (gid != "ambassadors" && access["revoke "+r["id"]] == 0) {
				t.Errorf("resource %s: %d grants, %d revokes", r["id"], access["grant "+r["id"]], access["revoke "+r["id"]])
			}
		}
	}
}

func firstLines(s string, n int) string {
	lines := bytes.SplitN([]byte(s), []byte("\n"), n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
