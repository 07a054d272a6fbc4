package httpapi_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smartgroups/smartgroups/docs"
	"github.com/smartgroups/smartgroups/internal/httpapi"
)

const (
	ruleVIP    = `{"field":"profile.tags","op":"has_any","value":["vip"]}`
	ruleNested = `{"all":[{"group":"vip"},{"not":{"group":"st"}},{"any":[{"field":"profile.role","op":"eq","value":"admin"},{"activity":"attended_live","resources":["live-1"]}]}]}`
)

func rawRule(s string) json.RawMessage { return json.RawMessage(s) }

// waitServing waits until the instance answers reads that need every
// partition (the consumer group assigned them).
func waitServing(t *testing.T, c *client) {
	t.Helper()
	eventually(t, "all partitions served", 60*time.Second, func() bool {
		return c.do("POST", "/v1/spots/acme/groups/preview", map[string]any{"rule": rawRule(`{"all":[]}`)}).status == 200
	})
}

func memberCount(t *testing.T, c *client, id string) int {
	t.Helper()
	var g group
	c.must(200, "GET", "/v1/spots/acme/groups/"+id, nil, &g)
	require.NotNil(t, g.MemberCount)
	return *g.MemberCount
}

// TestAPIEndToEnd drives every endpoint of SPEC §6 through a real serve
// instance (embedded broker, HTTP on loopback), including the 400, 401,
// 403, 404, 405, 409 and 413 paths and read-after-write. Every exchange is
// validated against docs/openapi.yaml.
func TestAPIEndToEnd(t *testing.T) {
	cfg := testConfig(t)
	in := start(t, cfg)
	admin := newClient(t, in, adminToken)
	c := admin.as(acmeToken) // most calls use the spot token
	p := newProducer(t, in, cfg.Kafka.TopicPrefix)
	waitServing(t, c)

	// --- auth, unauthenticated endpoints, the document ---
	e := c.as("").fail(401, "unauthorized", "GET", "/v1/spots/acme/groups", nil)
	require.Contains(t, e.Message, "Authorization")
	c.as("not-a-valid-token-at-all").fail(401, "unauthorized", "GET", "/v1/spots/acme/groups", nil)
	e = c.as(globexToken).fail(403, "forbidden", "GET", "/v1/spots/acme/groups", nil)
	require.Contains(t, e.Message, `"globex"`)
	c.as(globexToken).fail(403, "forbidden", "POST", "/v1/spots/acme/groups", map[string]any{"id": "x", "type": "static", "name": "X"})
	c.as(globexToken).must(200, "GET", "/v1/spots/globex/groups", nil, nil)
	admin.must(200, "GET", "/v1/spots/globex/groups", nil, nil)
	for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
		c.as("").must(200, "GET", path, nil, nil)
	}
	r := c.must(200, "GET", "/v1/openapi.yaml", nil, nil)
	require.Equal(t, docs.OpenAPI, r.body)
	c.as("").fail(401, "unauthorized", "GET", "/v1/openapi.yaml", nil)
	c.fail(404, "not_found", "GET", "/v1/nope", nil)
	r = c.do("PUT", "/v1/spots/acme/groups", nil)
	require.Equal(t, 405, r.status)
	require.Contains(t, r.header.Get("Allow"), "POST")

	// --- schemas ---
	plan := map[string]any{"label": "Plan", "type": "single_select",
		"options": []map[string]string{{"id": "free", "label": "Free"}, {"id": "pro", "label": "Pro"}, {"id": "team", "label": "Team"}}}
	var schema map[string]any
	c.must(201, "PUT", "/v1/spots/acme/properties/plan", plan, &schema)
	require.Equal(t, "property", schema["kind"])
	require.Equal(t, "plan", schema["id"])
	c.must(200, "PUT", "/v1/spots/acme/properties/plan", plan, nil)
	e = c.fail(400, "invalid_definition", "PUT", "/v1/spots/acme/properties/bad", map[string]any{"label": "B", "type": "single_select"})
	require.Contains(t, e.Message, "options")
	c.fail(400, "invalid_request", "PUT", "/v1/spots/acme/properties/bad", map[string]any{"label": "B"})
	c.must(201, "PUT", "/v1/spots/acme/questions/size", map[string]any{"label": "Company size", "type": "text"}, nil)
	var schemas list[map[string]any]
	c.must(200, "GET", "/v1/spots/acme/questions", nil, &schemas)
	require.Len(t, schemas.Items, 1)
	c.must(200, "GET", "/v1/spots/acme/questions/size", nil, &schema)
	require.Equal(t, "Company size", schema["label"])
	c.must(200, "GET", "/v1/spots/acme/properties", nil, &schemas)
	require.Len(t, schemas.Items, 1)
	require.Equal(t, "single_select", schemas.Items[0]["type"])
	c.must(200, "GET", "/v1/spots/acme/properties/plan", nil, nil)
	c.fail(404, "schema_not_found", "GET", "/v1/spots/acme/properties/nope", nil)

	// --- groups: create, validation ---
	var g group
	r = c.must(201, "POST", "/v1/spots/acme/groups", map[string]any{"id": "st", "type": "static", "name": "Staff"}, &g)
	require.Equal(t, "/v1/spots/acme/groups/st", r.header.Get("Location"))
	require.Equal(t, 0, *g.MemberCount)
	c.must(201, "POST", "/v1/spots/acme/groups", map[string]any{"id": "vip", "type": "smart", "name": "VIPs", "icon": "star", "rule": rawRule(ruleVIP)}, &g)
	require.Equal(t, "smart", g.Type)
	require.Equal(t, "star", g.Icon)
	require.JSONEq(t, ruleVIP, string(g.Rule))
	c.fail(409, "already_exists", "POST", "/v1/spots/acme/groups", map[string]any{"id": "vip", "type": "smart", "name": "again", "rule": rawRule(ruleVIP)})
	e = c.fail(400, "invalid_rule", "POST", "/v1/spots/acme/groups", map[string]any{"id": "bad", "type": "smart", "name": "Bad",
		"rule": rawRule(`{"all":[{"field":"profile.nope","op":"eq","value":"x"}]}`)})
	require.Contains(t, e.Message, `unknown field "profile.nope"`)
	e = c.fail(400, "invalid_rule", "POST", "/v1/spots/acme/groups", map[string]any{"id": "bad", "type": "smart", "name": "Bad",
		"rule": rawRule(`{"field":"custom.plan","op":"in","value":["gold"]}`)})
	require.Contains(t, e.Message, `option "gold" is not declared`)
	c.fail(400, "invalid_rule", "POST", "/v1/spots/acme/groups", map[string]any{"id": "bad", "type": "smart", "name": "Bad", "rule": rawRule(`{"group":"missing"}`)})
	c.fail(400, "missing_field", "POST", "/v1/spots/acme/groups", map[string]any{"id": "bad", "type": "smart", "name": "Bad"})
	c.fail(400, "invalid_request", "POST", "/v1/spots/acme/groups", map[string]any{"id": "bad", "name": "Bad"})
	c.fail(400, "invalid_request", "POST", "/v1/spots/acme/groups", `{"id":"bad","type":"static","name":"B","colour":"red"}`)
	e = c.fail(400, "invalid_json", "POST", "/v1/spots/acme/groups", `{"id":"bad",`)
	require.Contains(t, e.Message, "not valid JSON")
	e = c.fail(413, "body_too_large", "POST", "/v1/spots/acme/groups", `{"id":"big","type":"static","name":"`+strings.Repeat("x", 1<<20)+`"}`)
	require.Contains(t, e.Message, "1 MiB")
	c.fail(404, "group_not_found", "GET", "/v1/spots/acme/groups/bad", nil)
	var gen group
	c.must(201, "POST", "/v1/spots/acme/groups", map[string]any{"type": "static", "name": "Generated"}, &gen)
	require.True(t, strings.HasPrefix(gen.ID, "g-"), gen.ID)
	c.must(204, "DELETE", "/v1/spots/acme/groups/"+gen.ID, nil, nil)
	c.fail(404, "group_not_found", "DELETE", "/v1/spots/acme/groups/"+gen.ID, nil)

	// --- members arrive on Kafka ---
	people := []struct {
		id      string
		profile map[string]any
	}{
		{"u1", map[string]any{"first_name": "Ada", "last_name": "Lovelace", "email": "ada@math.org", "status": "accepted", "role": "admin", "tags": []string{"vip"}}},
		{"u2", map[string]any{"first_name": "alan", "last_name": "Turing", "email": "alan@bletchley.uk", "status": "accepted", "role": "member", "tags": []string{"vip"}}},
		{"u3", map[string]any{"first_name": "Ada", "last_name": "Byron", "email": "byron@poetry.org", "status": "invited", "role": "member", "tags": []string{"vip", "gold"}}},
		{"u4", map[string]any{"first_name": "Grace", "last_name": "Hopper", "email": "grace@navy.mil", "status": "deactivated", "role": "member", "tags": []string{"vip"}}},
		{"u5", map[string]any{"first_name": "Émile", "last_name": "Borel", "email": "emile@math.org", "status": "pending", "role": "member", "tags": []string{"other"}}},
		{"u6", map[string]any{"email": "anon@x.org", "status": "accepted", "role": "member", "tags": []string{"vip"}, "static_groups": []string{"st", "future"}}},
	}
	for _, m := range people {
		p.member(m.id, m.profile)
	}
	p.custom("u1", map[string]any{"plan": "pro"})
	p.custom("u5", map[string]any{"plan": "pro"})
	eventually(t, "vip to have 4 members", 30*time.Second, func() bool { return memberCount(t, c, "vip") == 4 })
	eventually(t, "the custom values", 30*time.Second, func() bool {
		var pv preview
		c.must(200, "POST", "/v1/spots/acme/groups/preview", map[string]any{"rule": rawRule(`{"field":"custom.plan","op":"in","value":["pro"]}`)}, &pv)
		return pv.Count == 2
	})
	require.Equal(t, 1, memberCount(t, c, "st"))

	// --- read-after-write: the response of a create already counts the
	// backfilled members, and so does every read after it ---
	c.must(201, "POST", "/v1/spots/acme/groups", map[string]any{"id": "pro", "type": "smart", "name": "Pro plan",
		"rule": rawRule(`{"field":"custom.plan","op":"in","value":["pro"]}`)}, &g)
	require.Equal(t, 2, *g.MemberCount)
	require.Equal(t, []string{"u1", "u5"}, c.allMembers("acme", "pro", "", 10))
	c.must(201, "POST", "/v1/spots/acme/groups", map[string]any{"id": "nested", "type": "smart", "name": "Nested", "rule": rawRule(ruleNested)}, &g)
	require.Equal(t, 1, *g.MemberCount)

	// --- list and get ---
	var groups list[group]
	c.must(200, "GET", "/v1/spots/acme/groups", nil, &groups)
	require.Equal(t, []string{"nested", "pro", "st", "vip"}, func() (out []string) {
		for _, g := range groups.Items {
			out = append(out, g.ID)
		}
		return
	}())
	require.Equal(t, 4, *groups.Items[3].MemberCount)
	c.must(200, "GET", "/v1/spots/acme/groups?limit=3", nil, &groups)
	require.Len(t, groups.Items, 3)
	require.NotEmpty(t, groups.NextCursor)
	c.must(200, "GET", "/v1/spots/acme/groups?limit=3&cursor="+groups.NextCursor, nil, &groups)
	require.Len(t, groups.Items, 1)
	require.Equal(t, "vip", groups.Items[0].ID)
	require.Empty(t, groups.NextCursor)
	c.fail(400, "invalid_request", "GET", "/v1/spots/acme/groups?limit=0", nil)
	c.fail(400, "invalid_cursor", "GET", "/v1/spots/acme/groups?cursor=not-a-cursor", nil)

	// --- preview ---
	var pv preview
	c.must(200, "POST", "/v1/spots/acme/groups/preview", map[string]any{"rule": rawRule(ruleVIP)}, &pv)
	require.Equal(t, 4, pv.Count)
	require.Equal(t, []string{"u6", "u3", "u1", "u2"}, ids(pv.Members)) // nameless first, then by first and last name
	c.must(200, "POST", "/v1/spots/acme/groups/preview", map[string]any{"rule": rawRule(ruleVIP), "limit": 2}, &pv)
	require.Equal(t, 4, pv.Count)
	require.Equal(t, []string{"u6", "u3"}, ids(pv.Members))
	c.fail(400, "invalid_rule", "POST", "/v1/spots/acme/groups/preview", map[string]any{"rule": rawRule(`{"field":"profile.status","op":"eq","value":"x"}`)})
	c.fail(400, "invalid_request", "POST", "/v1/spots/acme/groups/preview", map[string]any{})
	c.fail(404, "group_not_found", "POST", "/v1/spots/acme/groups/preview", map[string]any{"rule": rawRule(ruleVIP), "group": "nope"})
	e = c.fail(400, "cycle", "POST", "/v1/spots/acme/groups/preview", map[string]any{"rule": rawRule(`{"group":"nested"}`), "group": "vip"})
	require.Contains(t, e.Message, "cycle")

	// --- dry-run create: the preview, nothing written ---
	c.must(200, "POST", "/v1/spots/acme/groups?dry_run=true", map[string]any{"id": "pending", "type": "smart", "name": "P",
		"rule": rawRule(`{"field":"profile.status","op":"in","value":["pending"]}`)}, &pv)
	require.Equal(t, 1, pv.Count)
	require.Equal(t, "u5", pv.Members[0].Member)
	require.Equal(t, "Émile", pv.Members[0].FirstName)
	c.fail(404, "group_not_found", "GET", "/v1/spots/acme/groups/pending", nil)
	c.must(200, "POST", "/v1/spots/acme/groups?dry_run=true", map[string]any{"id": "future", "type": "static", "name": "F"}, &pv)
	require.Equal(t, []string{"u6"}, ids(pv.Members))
	c.fail(400, "invalid_rule", "POST", "/v1/spots/acme/groups?dry_run=true", map[string]any{"type": "smart", "name": "P", "rule": rawRule(`{"nope":1}`)})
	c.fail(400, "invalid_request", "POST", "/v1/spots/acme/groups?dry_run=maybe", map[string]any{"type": "static", "name": "P"})

	// --- members: order, search, filters, pagination ---
	require.Equal(t, []string{"u6", "u3", "u1", "u2"}, c.allMembers("acme", "vip", "", 50))
	require.Equal(t, []string{"u6", "u3", "u1", "u2"}, c.allMembers("acme", "vip", "", 1))
	require.Equal(t, []string{"u3", "u1"}, c.allMembers("acme", "vip", "&q=ADA", 50))
	require.Equal(t, []string{"u1"}, c.allMembers("acme", "vip", "&q=ada+love", 50))
	require.Equal(t, []string{"u1"}, c.allMembers("acme", "vip", "&q=%40math", 50))
	require.Equal(t, []string{"u1"}, c.allMembers("acme", "vip", "&role=admin", 50))
	require.Equal(t, []string{"u3"}, c.allMembers("acme", "vip", "&status=invited", 50))
	require.Equal(t, []string{"u6", "u3", "u2"}, c.allMembers("acme", "vip", "&status=invited&status=accepted&role=member&q=a", 50))
	require.Equal(t, []string{"u6", "u3", "u1", "u2"}, c.allMembers("acme", "vip", "&status=accepted,invited", 50))
	require.Equal(t, []string{"u6"}, c.allMembers("acme", "st", "", 50))
	var page list[memberSummary]
	c.must(200, "GET", "/v1/spots/acme/groups/vip/members?limit=1", nil, &page)
	require.Equal(t, memberSummary{Member: "u6", Email: "anon@x.org", Status: "accepted", Role: "member"}, page.Items[0])
	c.fail(400, "invalid_request", "GET", "/v1/spots/acme/groups/vip/members?status=banned", nil)
	c.fail(400, "invalid_request", "GET", "/v1/spots/acme/groups/vip/members?limit=1001", nil)
	c.fail(400, "invalid_cursor", "GET", "/v1/spots/acme/groups/vip/members?cursor=bm90IGpzb24", nil)
	c.fail(404, "group_not_found", "GET", "/v1/spots/acme/groups/nope/members", nil)

	// A page boundary with concurrent changes: after the first page
	// (u6, u3), Aaron joins before the cursor, Zed after it, and u1 (after
	// it) leaves. The next page continues exactly after u3.
	c.must(200, "GET", "/v1/spots/acme/groups/vip/members?limit=2", nil, &page)
	require.Equal(t, []string{"u6", "u3"}, ids(page.Items))
	p.member("u7", map[string]any{"first_name": "Aaron", "status": "accepted", "tags": []string{"vip"}})
	p.member("u8", map[string]any{"first_name": "Zed", "status": "accepted", "tags": []string{"vip"}})
	p.member("u1", map[string]any{"tags": []string{}})
	eventually(t, "the concurrent changes", 30*time.Second, func() bool {
		return slices.Equal(c.allMembers("acme", "vip", "", 50), []string{"u6", "u7", "u3", "u2", "u8"})
	})
	var next list[memberSummary]
	c.must(200, "GET", "/v1/spots/acme/groups/vip/members?limit=2&cursor="+page.NextCursor, nil, &next)
	require.Equal(t, []string{"u2", "u8"}, ids(next.Items))
	require.Empty(t, next.NextCursor)
	p.member("u1", map[string]any{"tags": []string{"vip"}})
	eventually(t, "u1 back in vip", 30*time.Second, func() bool { return memberCount(t, c, "vip") == 6 })

	// --- PATCH ---
	g = group{}
	c.must(200, "PATCH", "/v1/spots/acme/groups/vip", map[string]any{"name": "Very important", "description": "Tagged vip", "icon": nil}, &g)
	require.Equal(t, "Very important", g.Name)
	require.Equal(t, "Tagged vip", g.Description)
	require.Empty(t, g.Icon)
	require.Equal(t, 6, *g.MemberCount)
	e = c.fail(400, "group_type_change", "PATCH", "/v1/spots/acme/groups/vip", map[string]any{"type": "static"})
	require.Contains(t, e.Message, "cannot change")
	c.must(200, "PATCH", "/v1/spots/acme/groups/vip", map[string]any{"type": "smart", "id": "vip"}, nil)
	c.fail(400, "invalid_request", "PATCH", "/v1/spots/acme/groups/vip", map[string]any{"colour": "red"})
	c.fail(400, "invalid_request", "PATCH", "/v1/spots/acme/groups/vip", map[string]any{"rule": nil})
	c.fail(400, "invalid_request", "PATCH", "/v1/spots/acme/groups/st", map[string]any{"rule": rawRule(ruleVIP)})
	c.fail(400, "cycle", "PATCH", "/v1/spots/acme/groups/vip", map[string]any{"rule": rawRule(`{"group":"nested"}`)})
	c.fail(404, "group_not_found", "PATCH", "/v1/spots/acme/groups/nope", map[string]any{"name": "x"})
	var diff struct {
		Added        []string `json:"added"`
		Removed      []string `json:"removed"`
		AddedCount   int      `json:"added_count"`
		RemovedCount int      `json:"removed_count"`
	}
	newRule := `{"any":[{"field":"profile.tags","op":"has_any","value":["gold"]},{"field":"custom.plan","op":"in","value":["pro"]}]}`
	c.must(200, "PATCH", "/v1/spots/acme/groups/vip?dry_run=true", map[string]any{"rule": rawRule(newRule)}, &diff)
	require.Equal(t, []string{"u5"}, diff.Added)
	require.Equal(t, []string{"u2", "u6", "u7", "u8"}, diff.Removed)
	require.Equal(t, 1, diff.AddedCount)
	require.Equal(t, 4, diff.RemovedCount)
	var dryName map[string]any
	c.must(200, "PATCH", "/v1/spots/acme/groups/vip?dry_run=true", map[string]any{"name": "Renamed"}, &dryName)
	require.Equal(t, map[string]any{"added": []any{}, "removed": []any{}, "added_count": 0.0, "removed_count": 0.0, "access": map[string]any{}}, dryName)
	c.must(200, "GET", "/v1/spots/acme/groups/vip", nil, &g)
	require.JSONEq(t, ruleVIP, string(g.Rule)) // nothing applied
	require.Equal(t, "Very important", g.Name)
	anyRule := `{"any":[` + ruleVIP + `,{"field":"custom.plan","op":"in","value":["pro"]}]}`
	c.must(200, "PATCH", "/v1/spots/acme/groups/vip", map[string]any{"rule": rawRule(anyRule)}, &g)
	require.Equal(t, 7, *g.MemberCount) // u5 (pending, pro) joined before the response
	require.Contains(t, c.allMembers("acme", "vip", "", 50), "u5")

	// --- blacklist ---
	var entry map[string]string
	c.must(201, "PUT", "/v1/spots/acme/groups/vip/blacklist/u2", nil, &entry)
	require.Equal(t, map[string]string{"group": "vip", "member": "u2"}, entry)
	require.NotContains(t, c.allMembers("acme", "vip", "", 50), "u2") // at once
	c.must(200, "PUT", "/v1/spots/acme/groups/vip/blacklist/u2", nil, nil)
	var bl list[map[string]string]
	c.must(200, "GET", "/v1/spots/acme/groups/vip/blacklist", nil, &bl)
	require.Equal(t, []map[string]string{{"group": "vip", "member": "u2"}}, bl.Items)
	c.must(200, "POST", "/v1/spots/acme/groups/preview", map[string]any{"rule": rawRule(anyRule), "group": "vip"}, &pv)
	require.Equal(t, 6, pv.Count)
	require.NotContains(t, ids(pv.Members), "u2")
	c.must(200, "POST", "/v1/spots/acme/groups/preview", map[string]any{"rule": rawRule(anyRule)}, &pv)
	require.Equal(t, 7, pv.Count)
	c.must(204, "DELETE", "/v1/spots/acme/groups/vip/blacklist/u2", nil, nil)
	require.Contains(t, c.allMembers("acme", "vip", "", 50), "u2") // added back at once
	c.fail(404, "blacklist_entry_not_found", "DELETE", "/v1/spots/acme/groups/vip/blacklist/u2", nil)
	c.fail(400, "invalid_definition", "PUT", "/v1/spots/acme/groups/st/blacklist/u2", nil)
	c.fail(404, "group_not_found", "PUT", "/v1/spots/acme/groups/nope/blacklist/u2", nil)
	c.fail(404, "group_not_found", "GET", "/v1/spots/acme/groups/nope/blacklist", nil)

	// --- explain: nested rule with group triggers ---
	var x struct {
		InGroup     bool           `json:"in_group"`
		Eligible    bool           `json:"eligible"`
		Blacklisted bool           `json:"blacklisted"`
		Rule        map[string]any `json:"rule"`
	}
	c.must(200, "GET", "/v1/spots/acme/groups/nested/explain/u1", nil, &x)
	require.True(t, x.InGroup && x.Eligible && !x.Blacklisted)
	got, _ := json.Marshal(x.Rule)
	require.JSONEq(t, `{"all":[{"group":"vip","value":true},{"not":{"group":"st","value":false},"value":true},
		{"any":[{"field":"profile.role","op":"eq","operand":"admin","value":true},{"activity":"attended_live","resources":["live-1"],"matched_count":0,"value":false}],"value":true}],
		"value":true}`, string(got))
	c.must(200, "GET", "/v1/spots/acme/groups/nested/explain/u2", nil, &x)
	require.False(t, x.InGroup)
	require.Equal(t, false, x.Rule["value"])
	p.activity("u2", "e1", "attended_live", "live-1")
	eventually(t, "u2 in nested", 30*time.Second, func() bool {
		c.must(200, "GET", "/v1/spots/acme/groups/nested/explain/u2", nil, &x)
		return x.InGroup
	})
	require.Equal(t, 1.0, x.Rule["all"].([]any)[2].(map[string]any)["any"].([]any)[1].(map[string]any)["matched_count"])
	c.must(201, "PUT", "/v1/spots/acme/groups/vip/blacklist/u2", nil, nil)
	c.must(200, "GET", "/v1/spots/acme/groups/vip/explain/u2", nil, &x)
	require.True(t, x.Blacklisted && x.Eligible && !x.InGroup)
	require.Equal(t, true, x.Rule["value"])
	c.must(200, "GET", "/v1/spots/acme/groups/nested/explain/u2", nil, &x)
	require.False(t, x.InGroup) // vip's blacklist propagates through the group trigger
	c.must(204, "DELETE", "/v1/spots/acme/groups/vip/blacklist/u2", nil, nil)
	c.must(200, "GET", "/v1/spots/acme/groups/vip/explain/u4", nil, &x)
	require.False(t, x.Eligible)
	require.False(t, x.InGroup)
	c.must(200, "GET", "/v1/spots/acme/groups/st/explain/u6", nil, &x)
	require.True(t, x.InGroup)
	require.Nil(t, x.Rule)
	c.fail(404, "member_not_found", "GET", "/v1/spots/acme/groups/vip/explain/nobody", nil)
	c.fail(404, "group_not_found", "GET", "/v1/spots/acme/groups/nope/explain/u1", nil)

	// --- a member's groups ---
	var mg list[map[string]string]
	c.must(200, "GET", "/v1/spots/acme/members/u1/groups", nil, &mg)
	require.Equal(t, []map[string]string{{"id": "nested", "name": "Nested", "type": "smart"}, {"id": "pro", "name": "Pro plan", "type": "smart"},
		{"id": "vip", "name": "Very important", "type": "smart"}}, mg.Items)
	c.fail(404, "member_not_found", "GET", "/v1/spots/acme/members/nobody/groups", nil)

	// --- references ---
	refs := func(q string) []string {
		var l list[map[string]string]
		c.must(200, "GET", "/v1/spots/acme/references?"+q, nil, &l)
		out := []string{}
		for _, g := range l.Items {
			out = append(out, g["id"])
		}
		return out
	}
	require.Equal(t, []string{"vip"}, refs("tag=VIP"))
	require.Equal(t, []string{}, refs("tag=gold"))
	require.Equal(t, []string{"pro", "vip"}, refs("property=plan"))
	require.Equal(t, []string{"pro", "vip"}, refs("property=plan&option=pro"))
	require.Equal(t, []string{}, refs("property=plan&option=team"))
	require.Equal(t, []string{"nested"}, refs("group=vip"))
	require.Equal(t, []string{"nested"}, refs("group=st"))
	require.Equal(t, []string{}, refs("question=size"))
	c.fail(400, "invalid_request", "GET", "/v1/spots/acme/references", nil)
	c.fail(400, "invalid_request", "GET", "/v1/spots/acme/references?option=pro", nil)
	c.fail(400, "invalid_request", "GET", "/v1/spots/acme/references?tag=a&group=b", nil)

	// --- referential integrity ---
	e = c.fail(409, "referenced", "DELETE", "/v1/spots/acme/groups/vip", nil)
	require.Equal(t, []any{"nested"}, e.Details["groups"])
	e = c.fail(409, "referenced", "DELETE", "/v1/spots/acme/groups/st", nil)
	require.Equal(t, []any{"nested"}, e.Details["groups"])
	e = c.fail(409, "referenced", "DELETE", "/v1/spots/acme/properties/plan", nil)
	require.Equal(t, []any{"pro", "vip"}, e.Details["groups"])
	e = c.fail(409, "referenced", "PUT", "/v1/spots/acme/properties/plan", map[string]any{"label": "Plan", "type": "single_select",
		"options": []map[string]string{{"id": "free", "label": "Free"}, {"id": "team", "label": "Team"}}})
	require.Equal(t, []any{"pro", "vip"}, e.Details["groups"])
	require.Contains(t, e.Message, `option "pro"`)
	e = c.fail(409, "referenced", "PUT", "/v1/spots/acme/properties/plan", map[string]any{"label": "Plan", "type": "text"})
	require.Contains(t, e.Message, "cannot change type")
	// Removing an option nobody names, and relabeling, are fine.
	c.must(200, "PUT", "/v1/spots/acme/properties/plan", map[string]any{"label": "Plan!", "type": "single_select",
		"options": []map[string]string{{"id": "free", "label": "Free"}, {"id": "pro", "label": "Pro"}}}, &schema)
	require.Equal(t, "Plan!", schema["label"])
	c.must(204, "DELETE", "/v1/spots/acme/questions/size", nil, nil)
	c.fail(404, "schema_not_found", "DELETE", "/v1/spots/acme/questions/size", nil)
	c.must(204, "DELETE", "/v1/spots/acme/groups/nested", nil, nil)
	c.must(204, "DELETE", "/v1/spots/acme/groups/vip", nil, nil)
	c.fail(404, "group_not_found", "GET", "/v1/spots/acme/groups/vip", nil)
	c.must(200, "GET", "/v1/spots/acme/members/u1/groups", nil, &mg)
	require.Equal(t, []map[string]string{{"id": "pro", "name": "Pro plan", "type": "smart"}}, mg.Items)
	c.must(204, "DELETE", "/v1/spots/acme/groups/pro", nil, nil)
	c.must(204, "DELETE", "/v1/spots/acme/properties/plan", nil, nil)
	c.must(204, "DELETE", "/v1/spots/acme/groups/st", nil, nil)
	c.must(200, "GET", "/v1/spots/acme/groups", nil, &groups)
	require.Empty(t, groups.Items)
}

// TestOpenAPIDocument checks that docs/openapi.yaml is a valid OpenAPI 3
// document describing every route, and that the validation used by the
// end-to-end tests does reject a response that departs from it.
func TestOpenAPIDocument(t *testing.T) {
	_, router, err := httpapi.OpenAPI()
	require.NoError(t, err)
	for _, route := range []string{
		"POST /v1/spots/a/groups", "POST /v1/spots/a/groups/preview", "GET /v1/spots/a/groups", "GET /v1/spots/a/groups/g",
		"PATCH /v1/spots/a/groups/g", "DELETE /v1/spots/a/groups/g", "GET /v1/spots/a/groups/g/members",
		"PUT /v1/spots/a/groups/g/blacklist/m", "DELETE /v1/spots/a/groups/g/blacklist/m", "GET /v1/spots/a/groups/g/blacklist",
		"GET /v1/spots/a/groups/g/explain/m", "GET /v1/spots/a/members/m/groups", "GET /v1/spots/a/references",
		"GET /v1/spots/a/members/m", "GET /v1/spots/a/members/m/history",
		"PUT /v1/spots/a/properties/p", "DELETE /v1/spots/a/properties/p", "PUT /v1/spots/a/questions/q",
		"DELETE /v1/spots/a/questions/q", "GET /v1/openapi.yaml", "POST /v1/internal/spots/a/partial",
	} {
		method, path, _ := strings.Cut(route, " ")
		req, _ := http.NewRequest(method, "http://x"+path, nil)
		_, _, err := router.FindRoute(req)
		require.NoError(t, err, route)
	}
	req, _ := http.NewRequest("GET", "http://x/v1/spots/acme/groups/g", nil)
	good := `{"kind":"group","spot":"acme","id":"g","type":"smart","name":"G","rule":{"all":[]},"member_count":3}`
	h := http.Header{"Content-Type": []string{"application/json"}}
	require.NoError(t, httpapi.ValidateExchange(req, nil, 200, h, []byte(good)))
	for _, bad := range []string{
		`{"kind":"group","spot":"acme","id":"g","type":"smart","name":"G"}`,                      // no member_count
		`{"kind":"group","spot":"acme","id":"g","type":"dynamic","name":"G","member_count":1}`,   // bad enum
		`{"kind":"group","spot":"acme","id":"g","type":"smart","name":"G","member_count":"one"}`, // bad type
	} {
		require.Error(t, httpapi.ValidateExchange(req, nil, 200, h, []byte(bad)), bad)
	}
	require.Error(t, httpapi.ValidateExchange(req, nil, 418, h, []byte(`{}`)), "undocumented status")
	require.Error(t, httpapi.ValidateExchange(req, nil, 404, h, []byte(`{"error":{"code":"x"}}`)), "error without message and details")
}

// TestNoTokenRequiresLoopback: without any token the API is open, so serve
// refuses to listen anywhere but on loopback; with a token it may.
func TestNoTokenRequiresLoopback(t *testing.T) {
	cfg := testConfig(t)
	cfg.APIToken, cfg.SpotTokens = "", nil
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		cfg.HTTPAddr = addr
		err := cfg.Validate()
		require.Error(t, err, addr)
		require.Contains(t, err.Error(), "loopback")
	}
	cfg.HTTPAddr = "127.0.0.1:0"
	require.NoError(t, cfg.Validate())
	cfg.HTTPAddr = "0.0.0.0:0"
	cfg.APIToken = adminToken
	require.NoError(t, cfg.Validate())
	cfg.APIToken = "short"
	require.ErrorContains(t, cfg.Validate(), "at least 16 characters")
}
