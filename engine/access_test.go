package engine

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// groupRes is a group definition of spot "acme" listing resources (ids of
// type live).
func groupRes(id, typ, rule string, resources ...string) in {
	g := map[string]any{"kind": "group", "spot": "acme", "id": id, "type": typ, "name": "G " + id}
	if rule != "" {
		g["rule"] = json.RawMessage(rule)
	}
	rs := []Resource{}
	for _, r := range resources {
		rs = append(rs, Resource{ID: r, Type: "live", Title: "Live " + r})
	}
	g["resources"] = rs
	b, err := json.Marshal(g)
	if err != nil {
		panic(err)
	}
	return in{KindDefinitions, "acme/group/" + id, string(b)}
}

// acc renders one access event: "op resource/member [groups] #seq @ts".
func acc(op, resource, member string, groups []string, seq int, ts string) string {
	return fmt.Sprintf("%s %s/%s [%s] #%d @%s", op, resource, member, strings.Join(groups, ","), seq, ts)
}

func accs(events []AccessEvent) []string {
	out := make([]string, 0, len(events))
	for _, e := range events {
		out = append(out, acc(string(e.Op), e.Resource, e.Member, e.Groups, int(e.Seq), e.TS))
	}
	return out
}

// access processes the inputs as one batch and returns the access events.
func (h *harness) access(ins ...in) []string {
	h.t.Helper()
	res := h.run(ins...)
	require.Empty(h.t, res.DeadLetters, "unexpected dead letters")
	return accs(res.Access)
}

func TestAccessSharedResources(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	t0 := at(0)
	require.Empty(t, h.access(groupRes("vips", "smart", ruleVIP, "live-1", "course-1"),
		groupRes("gold", "smart", ruleGold, "live-1"), groupRes("st", "static", "", "forum-1", "live-1")))
	// Entering two groups that list live-1 grants it once, with both.
	require.Equal(t, []string{
		acc("grant", "course-1", "u1", []string{"vips"}, 1, t0),
		acc("grant", "live-1", "u1", []string{"gold", "vips"}, 1, t0),
	}, h.access(prof("u1", t0, `{"status":"accepted","tags":["vip","gold"]}`)))
	// Leaving one of them keeps live-1: only course-1 goes.
	t1 := at(time.Minute)
	require.Equal(t, []string{acc("revoke", "course-1", "u1", []string{}, 2, t1)},
		h.access(prof("u1", t1, `{"tags":["gold"]}`)))
	// A static group adds forum-1; live-1 is given by two groups now, and
	// a change of that list emits nothing.
	t2 := at(2 * time.Minute)
	require.Equal(t, []string{acc("grant", "forum-1", "u1", []string{"st"}, 1, t2)},
		h.access(prof("u1", t2, `{"static_groups":["st"]}`)))
	// Eligibility ends the smart groups, not the static one.
	t3 := at(3 * time.Minute)
	require.Empty(t, h.access(prof("u1", t3, `{"status":"deactivated"}`)))
	require.Equal(t, []string{
		acc("revoke", "forum-1", "u1", []string{}, 2, t3),
		acc("revoke", "live-1", "u1", []string{}, 2, t3),
	}, h.access(prof("u1", t3, `{"static_groups":null}`)))
	// Moving between two groups listing the same resource within one
	// record emits nothing for it.
	t4 := at(4 * time.Minute)
	require.Equal(t, []string{
		acc("grant", "course-1", "u1", []string{"vips"}, 3, t4),
		acc("grant", "live-1", "u1", []string{"vips"}, 3, t4),
	}, h.access(prof("u1", t4, `{"status":"accepted","tags":["vip"]}`)))
	require.Equal(t, []string{acc("revoke", "course-1", "u1", []string{}, 4, t4)},
		h.access(prof("u1", t4, `{"tags":["gold"]}`)))
}

func TestAccessResourceListEdits(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	t0 := at(0)
	h.access(groupRes("vips", "smart", ruleVIP, "live-1"), groupRes("st", "static", "", "live-1"))
	require.Equal(t, []string{
		acc("grant", "live-1", "u1", []string{"vips"}, 1, t0),
		acc("grant", "live-1", "u2", []string{"st"}, 1, t0),
	}, h.access(prof("u1", t0, `{"status":"accepted","tags":["vip"]}`), prof("u2", t0, `{"static_groups":["st"]}`)))
	// Adding a resource to a group grants it to the group's members.
	require.Equal(t, []string{acc("grant", "chan-1", "u1", []string{"vips"}, 1, t0)},
		h.access(groupRes("vips", "smart", ruleVIP, "live-1", "chan-1")))
	// Removing live-1 from the static group revokes it from u2 only.
	require.Equal(t, []string{acc("revoke", "live-1", "u2", []string{}, 2, t0)},
		h.access(groupRes("st", "static", "")))
	// A rule change and a list change in one definition.
	require.Equal(t, []string{
		acc("revoke", "chan-1", "u1", []string{}, 2, t0),
		acc("revoke", "live-1", "u1", []string{}, 2, t0),
		acc("grant", "live-2", "u1", []string{"vips"}, 1, t0),
	}, h.access(groupRes("vips", "smart", `{"all":[]}`, "live-2")))
	// u2 is not eligible (no status): only u1 is in vips.
	require.Equal(t, []string{acc("revoke", "live-2", "u1", []string{}, 2, t0)}, h.access(delGroup("vips")))
	// Deleting a static group revokes what it gave.
	require.Equal(t, []string{acc("grant", "forum-9", "u2", []string{"st"}, 1, t0)},
		h.access(groupRes("st", "static", "", "forum-9")))
	require.Equal(t, []string{acc("revoke", "forum-9", "u2", []string{}, 2, t0)}, h.access(delGroup("st")))
	// The lists reflected survive a restart: nothing is emitted again.
	h.reopen()
	require.Empty(t, h.access(groupRes("other", "static", "")))
}

func TestAccessEraseKeepsSeqs(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	t0 := at(0)
	h.access(groupRes("vips", "smart", ruleVIP, "live-1"), groupRes("st", "static", "", "forum-1"))
	require.Len(t, h.access(prof("u1", t0, `{"status":"accepted","tags":["vip"],"static_groups":["st"]}`)), 2)
	t1 := at(time.Minute)
	require.Equal(t, []string{
		acc("revoke", "forum-1", "u1", []string{}, 2, t1),
		acc("revoke", "live-1", "u1", []string{}, 2, t1),
	}, h.access(erase("u1", t1)))
	h.reopen()
	t2 := at(2 * time.Minute)
	require.Equal(t, []string{
		acc("grant", "forum-1", "u1", []string{"st"}, 3, t2),
		acc("grant", "live-1", "u1", []string{"vips"}, 3, t2),
	}, h.access(prof("u1", t2, `{"status":"accepted","tags":["vip"],"static_groups":["st"]}`)))
	// The access seqs are part of the member's state across a restart.
	h.reopen()
	require.Equal(t, []string{acc("revoke", "live-1", "u1", []string{}, 4, t2)},
		h.access(prof("u1", t2, `{"tags":[]}`)))
}

func TestAccessInvalidResources(t *testing.T) {
	long := strings.Repeat("x", 257)
	many := make([]string, MaxGroupResources+1)
	for i := range many {
		many[i] = fmt.Sprintf("r%d", i)
	}
	for _, tc := range []struct {
		name, value, code string
	}{
		{"unknown type", `[{"id":"r1","type":"webinar","title":"W"}]`, "invalid_field"},
		{"duplicate", `[{"id":"r1","type":"live","title":"A"},{"id":"r1","type":"course","title":"B"}]`, "invalid_field"},
		{"long id", `[{"id":"` + long + `","type":"live","title":"A"}]`, "invalid_id"},
		{"slash in id", `[{"id":"a/b","type":"live","title":"A"}]`, "invalid_id"},
		{"no title", `[{"id":"r1","type":"live"}]`, "missing_field"},
		{"not a list", `{"id":"r1"}`, "invalid_field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := `{"kind":"group","spot":"acme","id":"g","type":"static","name":"G","resources":` + tc.value + `}`
			_, e := DecodeDefinition(Record{Kind: KindDefinitions, Key: []byte("acme/group/g"), Value: []byte(v)}, DefaultLimits())
			require.NotNil(t, e)
			require.Equal(t, Code(tc.code), e.Code, e.Reason)
		})
	}
	h := newHarness(t, DefaultConfig())
	res := h.run(groupRes("g", "static", "", many...))
	require.Len(t, res.DeadLetters, 1)
	require.Contains(t, res.DeadLetters[0].Reason, "max resources per group")
}

func TestAccessEventJSON(t *testing.T) {
	e := AccessEvent{Spot: "acme", Resource: "live-42", Member: "u<1>", Op: OpRevoke, TS: "2026-11-20T09:00:00Z", Groups: []string{}, Seq: 2}
	want, err := json.Marshal(e)
	require.NoError(t, err)
	require.Equal(t, string(want), string(AppendAccessEventJSON(nil, &e)))
	e.Groups, e.Op = []string{"g1", "g-static-3"}, OpGrant
	want, err = json.Marshal(e)
	require.NoError(t, err)
	require.Equal(t, string(want), string(AppendAccessEventJSON(nil, &e)))
}

func TestAccessMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := DefaultConfig()
	cfg.Registerer = reg
	h := newHarness(t, cfg)
	h.access(groupRes("vips", "smart", ruleVIP, "live-1"), groupRes("st", "static", "", "live-1", "forum-1"))
	h.access(prof("u1", at(0), `{"status":"accepted","tags":["vip"]}`), prof("u2", at(0), `{"static_groups":["st"]}`))
	h.access(groupRes("st", "static", "", "forum-1"))
	h.access(erase("u1", at(time.Minute)))
	count := func(op, reason string) float64 {
		return testutil.ToFloat64(h.e.metrics.AccessChanges.WithLabelValues(op, reason))
	}
	require.Equal(t, 1.0, count("grant", "eligibility"), "u1 joins vips as it becomes eligible")
	require.Equal(t, 2.0, count("grant", "static_groups"), "u2 lists st")
	require.Equal(t, 1.0, count("revoke", "resources"), "st drops live-1")
	require.Equal(t, 1.0, count("revoke", "erased"))
	require.Equal(t, 0.0, count("grant", "time"))
	// Every series exists from the start.
	n, err := testutil.GatherAndCount(reg, "smartgroups_access_changes_total")
	require.NoError(t, err)
	require.Equal(t, 2*len(accessReasons), n)
}
