package httpapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/internal/demo"
	"github.com/smartgroups/smartgroups/internal/readme"
)

// validRules are rules of every shape of SPEC §3, all valid in the catalog
// TestRuleSchemaAgreesWithEngine declares; invalidRules have a wrong shape.
var (
	validRules = []string{
		`{"all":[]}`,
		`{"any":[]}`,
		`{"not":{"group":"staff"}}`,
		`{"any":[{"all":[{"field":"profile.tags","op":"has_any","value":["vip"]},{"group":"staff"}]},{"all":[]}]}`,
		`{"field":"profile.first_name","op":"eq","value":"Ada"}`,
		`{"field":"profile.email","op":"neq","value":"a@b.c"}`,
		`{"field":"profile.role","op":"in","value":["admin","member"]}`,
		`{"field":"profile.language","op":"not_in","value":["fr"]}`,
		`{"field":"profile.title","op":"contains","value":"eng"}`,
		`{"field":"profile.title","op":"not_contains","value":"eng"}`,
		`{"field":"profile.language","op":"starts_with","value":"en"}`,
		`{"field":"profile.email","op":"ends_with","value":".org"}`,
		`{"field":"profile.utm.source","op":"eq","value":"google"}`,
		`{"field":"profile.status","op":"in","value":["accepted","invited"]}`,
		`{"field":"profile.tags","op":"has_all","value":["vip","speaker"]}`,
		`{"field":"profile.static_groups","op":"has_none","value":["staff"]}`,
		`{"field":"profile.registered_at","op":"before","value":"2026-01-01T00:00:00Z"}`,
		`{"field":"profile.registered_at","op":"after","value":1767225600000}`,
		`{"field":"profile.invited_at","op":"between","value":["2026-01-01T00:00:00+01:00",1767225600000]}`,
		`{"field":"profile.last_activity_at","op":"within_last","value":{"days":30}}`,
		`{"field":"profile.last_activity_at","op":"more_than_ago","value":{"hours":12}}`,
		`{"field":"profile.title","op":"is_set"}`,
		`{"field":"profile.title","op":"is_not_set","value":null}`,
		`{"field":"custom.seats","op":"eq","value":10}`,
		`{"field":"custom.seats","op":"gte","value":2.5}`,
		`{"field":"custom.seats","op":"between","value":[1,5]}`,
		`{"field":"custom.beta","op":"is_true"}`,
		`{"field":"custom.beta","op":"is_false"}`,
		`{"field":"custom.plan","op":"in","value":["pro"]}`,
		`{"field":"custom.interests","op":"has_any","value":["ai"]}`,
		`{"field":"form.goal","op":"contains","value":"agent"}`,
		`{"activity":"attended_live"}`,
		`{"activity":"attended_live","resources":["live-42","live-43"],"when":{"within_last":{"days":30}},"count":{"gte":1}}`,
		`{"activity":"watched_replay","resources":null,"when":null,"count":null}`,
		`{"activity":"completed_course","when":{"between":["2026-01-01T00:00:00Z","2026-02-01T00:00:00Z"]},"count":{"lte":3}}`,
		`{"activity":"opened_document","when":{"before":1767225600000}}`,
		`{"activity":"joined_spot","count":{"eq":0}}`,
		`{"group":"staff"}`,
	}
	invalidRules = []string{
		`{}`,
		`[]`,
		`{"nope":1}`,
		`{"all":{}}`,
		`{"all":null}`,
		`{"all":[],"any":[]}`,
		`{"all":[{"nope":1}]}`,
		`{"not":[]}`,
		`{"field":"profile.nope","op":"eq","value":"x"}`,
		`{"field":"profile.utm","op":"eq","value":"x"}`,
		`{"field":"profile.utm.campain","op":"eq","value":"x"}`,
		`{"field":"plan","op":"eq","value":"x"}`,
		`{"field":"profile.tags","op":"has_any"}`,
		`{"field":"profile.tags","op":"has_any","value":[]}`,
		`{"field":"profile.tags","op":"has_any","value":"vip"}`,
		`{"field":"profile.role","op":"equals","value":"admin"}`,
		`{"field":"profile.role","op":"eq","value":"admin","negate":true}`,
		`{"field":"profile.title","op":"contains","value":["eng"]}`,
		`{"field":"custom.seats","op":"gt","value":"10"}`,
		`{"field":"custom.seats","op":"between","value":[1]}`,
		`{"field":"custom.beta","op":"is_true","value":true}`,
		`{"field":"profile.registered_at","op":"within_last","value":{"weeks":1}}`,
		`{"field":"profile.registered_at","op":"within_last","value":{"days":1,"hours":2}}`,
		`{"field":"profile.registered_at","op":"within_last","value":{"days":-1}}`,
		`{"field":"profile.registered_at","op":"within_last","value":30}`,
		`{"activity":"danced"}`,
		`{"activity":"attended_live","resources":[]}`,
		`{"activity":"attended_live","count":{"gt":1}}`,
		`{"activity":"attended_live","count":{"gte":1,"lte":3}}`,
		`{"activity":"attended_live","count":{"gte":-1}}`,
		`{"activity":"attended_live","when":{}}`,
		`{"activity":"attended_live","when":{"within":{"days":1}}}`,
		`{"activity":"attended_live","since":"2026-01-01T00:00:00Z"}`,
		`{"group":""}`,
		`{"group":1}`,
		`{"group":"staff","not":{"all":[]}}`,
	}
)

// TestRuleSchemaAgreesWithEngine checks the Rule schema of
// docs/openapi.yaml against the engine's rule compiler on the same rules:
// every rule of validRules matches the schema and is accepted by a preview,
// every rule of invalidRules is refused by both.
func TestRuleSchemaAgreesWithEngine(t *testing.T) {
	h := newHarness(t, 1, []int32{0}, nil)
	for _, put := range []struct{ path, body string }{
		{"/v1/spots/acme/properties/seats", `{"label":"Seats","type":"number"}`},
		{"/v1/spots/acme/properties/beta", `{"label":"Beta","type":"boolean"}`},
		{"/v1/spots/acme/properties/plan", `{"label":"Plan","type":"single_select","options":[{"id":"free","label":"Free"},{"id":"pro","label":"Pro"}]}`},
		{"/v1/spots/acme/properties/interests", `{"label":"Interests","type":"multi_select","options":[{"id":"ai","label":"AI"}]}`},
		{"/v1/spots/acme/questions/goal", `{"label":"Goal","type":"text"}`},
	} {
		r := h.do("PUT", put.path, admin, put.body)
		require.Equal(t, http.StatusCreated, r.status, string(r.body))
	}
	r := h.do("POST", "/v1/spots/acme/groups", admin, `{"id":"staff","type":"static","name":"Staff"}`)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))

	preview := func(rule string) response {
		return h.do("POST", "/v1/spots/acme/groups/preview", admin, `{"rule":`+rule+`}`)
	}
	for _, rule := range validRules {
		if err := ValidateSchema("Rule", []byte(rule)); err != nil {
			t.Errorf("schema refuses a valid rule: %v", err)
		}
		if r := preview(rule); r.status != http.StatusOK {
			t.Errorf("engine refuses %s: %d %s", rule, r.status, r.body)
		}
	}
	for _, rule := range invalidRules {
		if err := ValidateSchema("Rule", []byte(rule)); err == nil {
			t.Errorf("schema accepts the invalid rule %s", rule)
		}
		if r := preview(rule); r.status != http.StatusBadRequest {
			t.Errorf("engine answers %d to the invalid rule %s: %s", r.status, rule, r.body)
		}
	}
}

// TestDemoGroupsMatchSchema: the groups of the demo community, which use
// every trigger kind, are valid create requests by the document.
func TestDemoGroupsMatchSchema(t *testing.T) {
	groups := 0
	for _, r := range demo.New(demo.DefaultConfig()).Definitions() {
		var d struct{ Kind, Spot string }
		require.NoError(t, json.Unmarshal(r.Value, &d))
		if r.Kind != engine.KindDefinitions || d.Kind != "group" {
			continue
		}
		groups++
		h := http.Header{"Content-Type": {"application/json"}}
		if _, err := ValidateRequest("POST", "http://localhost/v1/spots/"+d.Spot+"/groups", h, r.Value); err != nil {
			t.Error(err)
		}
	}
	require.Greater(t, groups, 10)
}

// TestReadmeRequestsMatchDocument: every curl command of the README sends
// a request the document describes, with the token's header and a body
// that matches the operation's schema (rules included); the README shows
// the create, preview, dry-run update, blacklist and explain requests.
func TestReadmeRequestsMatchDocument(t *testing.T) {
	blocks, err := readme.Load()
	require.NoError(t, err)
	const token = "readme-token-0123456789"
	seen := map[string]bool{}
	for _, b := range blocks {
		if b.Lang != "sh" {
			continue
		}
		reqs, err := readme.CurlRequests(b.Text, map[string]string{"SMARTGROUPS_API_TOKEN": token})
		require.NoError(t, err, "README line %d", b.Line)
		for _, r := range reqs {
			u, err := url.Parse(r.URL)
			require.NoError(t, err, "README line %d", b.Line)
			if !strings.HasPrefix(u.Path, "/v1/") {
				continue
			}
			if got := r.Header.Get("Authorization"); got != "Bearer "+token {
				t.Errorf("README line %d: %s %s sends Authorization %q, want the token of $SMARTGROUPS_API_TOKEN", b.Line, r.Method, r.URL, got)
			}
			op, err := ValidateRequest(r.Method, r.URL, r.Header, r.Body)
			if err != nil {
				t.Errorf("README line %d: %v", b.Line, err)
				continue
			}
			if u.Query().Get("dry_run") == "true" {
				op += "?dry_run=true"
			}
			seen[op] = true
		}
	}
	for _, op := range []string{"createGroup", "previewRule", "updateGroup?dry_run=true", "putBlacklist", "explainMembership"} {
		if !seen[op] {
			t.Errorf("the README shows no %s request", op)
		}
	}
}
