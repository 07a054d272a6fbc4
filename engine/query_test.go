package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smartgroups/smartgroups/engine/rule"
	"github.com/smartgroups/smartgroups/state"
)

// allMembers returns the ids and states of every member of spot acme in
// partition 0, read straight from the store (no index).
func allMembers(t *testing.T, e *Engine) map[string]*MemberState {
	t.Helper()
	out := map[string]*MemberState{}
	p := state.MemberSpotPrefix(0, "acme")
	require.NoError(t, e.st.Scan(p, state.PrefixEnd(p), func(k, v []byte) bool {
		st, err := DecodeMemberState(v)
		require.NoError(t, err)
		out[st.ID] = st
		return true
	}))
	return out
}

// naivePreview evaluates a rule on every member without the posting lists.
func naivePreview(t *testing.T, e *Engine, raw string, blacklistOf string) []string {
	t.Helper()
	r, err := rule.CompileRule(json.RawMessage(raw), e.defs.Catalog("acme"), e.cfg.Limits.Rule())
	require.NoError(t, err)
	tx := e.begin()
	defer func() { _ = tx.b.Close() }()
	out := []string{}
	for id := range allMembers(t, e) {
		m, err := tx.memberByID(0, "acme", id, false)
		require.NoError(t, err)
		if !m.eligible() || e.defs.Blacklisted("acme", blacklistOf, id) {
			continue
		}
		ok, err := rule.Eval(r, m, e.now)
		require.NoError(t, err)
		if ok {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func ids(page *MemberPage) []string {
	out := []string{}
	for _, m := range page.Members {
		out = append(out, m.Member)
	}
	slices.Sort(out)
	return out
}

func groupMembers(t *testing.T, h *harness, group string) []string {
	t.Helper()
	page, err := h.e.QueryMembers(context.Background(), []int32{0}, MemberQuery{Spot: "acme", Group: group, Limit: 1 << 20})
	require.NoError(t, err)
	return ids(page)
}

// TestQueryPreviewEqualsBackfill checks, over random histories, that a
// preview (posting-list narrowing + evaluation) equals a naive evaluation
// of every member, and equals the membership the engine computes once a
// group with that rule is defined. With a blacklist, the preview of an
// existing group's new rule equals its membership after the update.
func TestQueryPreviewEqualsBackfill(t *testing.T) {
	rules := []string{
		ruleVIP,
		`{"field":"profile.tags","op":"has_all","value":["vip","gold"]}`,
		`{"any":[{"field":"custom.plan","op":"in","value":["pro"]},{"not":{"field":"profile.tags","op":"has_any","value":["gold"]}}]}`,
		`{"all":[{"group":"vip"},{"activity":"attended_live","resources":["r1","r2"]}]}`,
		`{"activity":"opened_link","count":{"eq":0}}`,
		`{"all":[]}`,
		`{"any":[]}`,
		`{"field":"profile.status","op":"in","value":["invited","pending"]}`,
		`{"all":[{"group":"st"},{"field":"custom.seats","op":"gte","value":5}]}`,
	}
	for seed := uint64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			h := newHarness(t, DefaultConfig())
			h.run(scenario(300, seed)...)
			for i, rule := range rules {
				want := naivePreview(t, h.e, rule, "")
				page, err := h.e.QueryMembers(context.Background(), []int32{0}, MemberQuery{Spot: "acme", Rule: json.RawMessage(rule), Limit: 1000})
				require.NoError(t, err)
				require.Equal(t, len(want), page.Total, rule)
				require.Equal(t, want, ids(page), rule)

				id := fmt.Sprintf("preview%d", i)
				h.run(smart(id, rule))
				require.Equal(t, want, groupMembers(t, h, id), "group defined with %s", rule)

				// Blacklist-aware: preview "gold"'s new rule, then apply it.
				want = naivePreview(t, h.e, rule, "gold")
				page, err = h.e.QueryMembers(context.Background(), []int32{0}, MemberQuery{Spot: "acme", Rule: json.RawMessage(rule), Blacklist: "gold", Limit: 1000})
				require.NoError(t, err)
				require.Equal(t, want, ids(page), "blacklist-aware %s", rule)
				if !strings.Contains(rule, `"group"`) {
					diff, err := h.e.DiffRule(context.Background(), []int32{0}, "acme", "gold", json.RawMessage(rule), 1000)
					require.NoError(t, err)
					before := groupMembers(t, h, "gold")
					res := h.run(smart("gold", rule))
					require.Empty(t, res.DeadLetters)
					require.Equal(t, want, groupMembers(t, h, "gold"))
					var added, removed []string
					for _, ev := range res.Events {
						if ev.Group != "gold" {
							continue
						}
						if ev.Op == OpAdd {
							added = append(added, ev.Member)
						} else {
							removed = append(removed, ev.Member)
						}
					}
					slices.Sort(added)
					slices.Sort(removed)
					require.Equal(t, len(added), diff.AddedCount, "before %v after %v", before, want)
					require.Equal(t, len(removed), diff.RemovedCount)
					require.Equal(t, append([]string{}, added...), diff.Added)
					require.Equal(t, append([]string{}, removed...), diff.Removed)
				}
			}
		})
	}
}

func TestQueryMembersSortFilterPaginate(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.run(smart("all", `{"all":[]}`))
	people := []struct{ id, first, last, email, role, status string }{
		{"u1", "Ada", "Lovelace", "ada@math.org", "admin", "accepted"},
		{"u2", "alan", "Turing", "alan@bletchley.uk", "member", "accepted"},
		{"u3", "Ada", "Byron", "byron@poetry.org", "member", "invited"},
		{"u4", "Émile", "Borel", "emile@math.org", "Member", "pending"},
		{"u5", "", "", "anon@x.org", "member", "accepted"},
		{"u6", "Grace", "Hopper", "grace@navy.mil", "member", "deactivated"},
		{"u0", "Ada", "Byron", "other@x.org", "member", "accepted"},
	}
	for _, p := range people {
		h.run(prof(p.id, at(0), fmt.Sprintf(`{"first_name":%q,"last_name":%q,"email":%q,"role":%q,"status":%q}`,
			p.first, p.last, p.email, p.role, p.status)))
	}
	list := func(f MemberFilter, after *SortKey, limit int) *MemberPage {
		page, err := h.e.QueryMembers(context.Background(), []int32{0}, MemberQuery{Spot: "acme", Group: "all", Filter: f, After: after, Limit: limit})
		require.NoError(t, err)
		return page
	}
	order := func(p *MemberPage) []string {
		var out []string
		for _, m := range p.Members {
			out = append(out, m.Member)
		}
		return out
	}
	// u6 is deactivated: not in the smart group. Nameless u5 sorts first;
	// "Ada Byron" twice, by id; case-insensitive names.
	all := list(MemberFilter{}, nil, 100)
	require.Equal(t, []string{"u5", "u0", "u3", "u1", "u2", "u4"}, order(all))
	require.Equal(t, 6, all.Total)
	require.Equal(t, "Lovelace", all.Members[3].LastName)

	// Pagination: pages of 2 with the key of the last item as cursor.
	var got []string
	var after *SortKey
	for {
		p := list(MemberFilter{}, after, 2)
		got = append(got, order(p)...)
		if p.Remaining <= len(p.Members) {
			break
		}
		k := p.Members[len(p.Members)-1].Key()
		after = &k
	}
	require.Equal(t, order(all), got)

	// A member inserted before the cursor and one deleted after it do not
	// shift the rest of the pages.
	k := all.Members[2].Key() // after u3
	h.run(prof("u7", at(0), `{"first_name":"Aaron","status":"accepted"}`), erase("u1", at(0)))
	require.Equal(t, []string{"u2", "u4"}, order(list(MemberFilter{}, &k, 10)))

	require.Equal(t, []string{"u0", "u3"}, order(list(MemberFilter{Query: "BYRON"}, nil, 10)))
	require.Equal(t, []string{"u0", "u3"}, order(list(MemberFilter{Query: "ada byr"}, nil, 10)))
	require.Equal(t, []string{"u4"}, order(list(MemberFilter{Query: "éMILE"}, nil, 10)))
	require.Equal(t, []string{"u4"}, order(list(MemberFilter{Query: "@MATH.org"}, nil, 10)))
	require.Equal(t, []string{"u4"}, order(list(MemberFilter{Roles: []string{"member"}, Statuses: []string{"pending"}}, nil, 10)))
	require.Equal(t, []string{"u5", "u7", "u0", "u2"}, order(list(MemberFilter{Statuses: []string{"accepted"}}, nil, 10)))
	require.Empty(t, order(list(MemberFilter{Roles: []string{"admin"}}, nil, 10))) // u1 was erased
	cnt := list(MemberFilter{}, nil, 0)
	require.Equal(t, 6, cnt.Total)
	require.Empty(t, cnt.Members)
}

func TestQueryExplainAndMemberGroups(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.run(static("st"), smart("vip", ruleVIP),
		smart("nested", `{"all":[{"group":"vip"},{"not":{"group":"st"}},{"activity":"attended_live","count":{"gte":1}}]}`))
	h.run(prof("u1", at(0), `{"status":"accepted","tags":["vip"]}`), act("u1", at(time.Minute), "e1", "attended_live", "l1"))
	x, err := h.e.ExplainMember("acme", "nested", "u1")
	require.NoError(t, err)
	require.True(t, x.InGroup)
	require.True(t, x.Eligible)
	require.False(t, x.Blacklisted)
	b, _ := json.Marshal(x.Rule)
	require.JSONEq(t, `{"all":[{"group":"vip","value":true},{"not":{"group":"st","value":false},"value":true},
		{"activity":"attended_live","count":{"gte":1},"matched_count":1,"value":true}],"value":true}`, string(b))

	h.run(blacklist("vip", "u1"))
	x, err = h.e.ExplainMember("acme", "nested", "u1")
	require.NoError(t, err)
	require.False(t, x.InGroup)
	require.Equal(t, false, x.Rule["value"])
	x, err = h.e.ExplainMember("acme", "vip", "u1")
	require.NoError(t, err)
	require.True(t, x.Blacklisted)
	require.False(t, x.InGroup)
	require.Equal(t, true, x.Rule["value"])

	groups, err := h.e.MemberGroups("acme", "u1")
	require.NoError(t, err)
	require.Empty(t, groups)
	h.run(unblacklist("vip", "u1"))
	groups, err = h.e.MemberGroups("acme", "u1")
	require.NoError(t, err)
	require.Equal(t, []string{"nested", "vip"}, groups)

	x, err = h.e.ExplainMember("acme", "st", "u1")
	require.NoError(t, err)
	require.False(t, x.InGroup)
	require.Nil(t, x.Rule)

	_, err = h.e.ExplainMember("acme", "nope", "u1")
	require.True(t, errors.Is(err, ErrUnknownGroup))
	_, err = h.e.ExplainMember("acme", "vip", "nobody")
	require.True(t, errors.Is(err, ErrUnknownMember))
	_, err = h.e.MemberGroups("acme", "nobody")
	require.True(t, errors.Is(err, ErrUnknownMember))

	counts, err := h.e.GroupCounts([]int32{0}, "acme")
	require.NoError(t, err)
	require.Equal(t, map[string]int{"st": 0, "vip": 1, "nested": 1}, counts)

	_, err = h.e.QueryMembers(context.Background(), []int32{1}, MemberQuery{Spot: "acme", Group: "vip"})
	require.True(t, errors.Is(err, ErrNotOwned))
	_, err = h.e.GroupCounts([]int32{3}, "acme")
	require.True(t, errors.Is(err, ErrNotOwned))
	h.e.Revoke([]int32{0})
	_, err = h.e.ExplainMember("acme", "vip", "u1")
	require.True(t, errors.Is(err, ErrNotOwned))
}

func TestCheckDefinition(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.run(smart("vip", ruleVIP), smart("nested", `{"group":"vip"}`))
	require.Nil(t, h.e.CheckDefinition("acme/group/x", []byte(groupJSON("x", "smart", ruleGold))))
	e := h.e.CheckDefinition("acme/group/x", []byte(groupJSON("x", "smart", `{"field":"profile.nope","op":"eq","value":"a"}`)))
	require.NotNil(t, e)
	require.Equal(t, CodeInvalidRule, e.Code)
	e = h.e.CheckDefinition("acme/group/vip", nil)
	require.NotNil(t, e)
	require.Equal(t, CodeReferenced, e.Code)
	require.Contains(t, e.Reason, "nested")
	e = h.e.CheckDefinition("acme/group/vip", []byte(groupJSON("vip", "smart", `{"group":"nested"}`)))
	require.Equal(t, CodeCycle, e.Code)
	e = h.e.CheckDefinition("acme/group/vip", []byte(groupJSON("vip", "static", "")))
	require.Equal(t, CodeGroupTypeChange, e.Code)
	// Nothing was applied.
	h.e.ViewDefs(func(d *Defs) {
		require.Nil(t, d.Spot("acme").Groups["x"])
		require.Equal(t, GroupSmart, d.Spot("acme").Groups["vip"].Type)
	})
}
