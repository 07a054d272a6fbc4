package engine

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCompileRuleRejects(t *testing.T) {
	d := testDefs(t)
	cases := []struct {
		name string
		rule string
		want string // substring of the error
	}{
		// Not a rule at all.
		{"not JSON", `{"all":[`, "rule is not valid JSON"},
		{"array root", `[]`, "rule: a rule node must be a JSON object"},
		{"string root", `"x"`, "rule: a rule node must be a JSON object"},
		{"null root", `null`, "rule: a rule node must be a JSON object"},
		{"empty object", `{}`, "rule: a rule node needs one of the keys all, any, not, field, activity or group"},
		{"unknown key only", `{"and":[]}`, "needs one of the keys all, any, not, field, activity or group"},
		{"all and any", `{"all":[],"any":[]}`, `rule: unexpected key "all"`},
		{"all with extra key", `{"all":[],"x":1}`, `rule: unexpected key "x"`},
		{"all not array", `{"all":{}}`, "rule.all: expected an array of rule nodes"},
		{"all null", `{"all":null}`, "rule.all: expected an array of rule nodes"},
		{"any of strings", `{"any":["x"]}`, "rule.any[0]: a rule node must be a JSON object"},
		{"not null", `{"not":null}`, "rule.not: a rule node must be a JSON object"},
		{"not array", `{"not":[]}`, "rule.not: a rule node must be a JSON object"},
		{"not with extra key", `{"not":{"all":[]},"all":[]}`, "unexpected key"},
		{"nested path", `{"all":[{"any":[{"all":[]},{"field":"profile.nope","op":"eq","value":"x"}]}]}`, `rule.all[0].any[1]: unknown field "profile.nope"`},

		// Unknown fields.
		{"unknown profile field", `{"field":"profile.nickname","op":"eq","value":"x"}`, `unknown field "profile.nickname"`},
		{"profile prefix only", `{"field":"profile.","op":"eq","value":"x"}`, `unknown field "profile."`},
		{"profile.utm itself", `{"field":"profile.utm","op":"is_set"}`, `unknown field "profile.utm"`},
		{"unknown utm key", `{"field":"profile.utm.gclid","op":"eq","value":"x"}`, `unknown field "profile.utm.gclid" (utm keys are source, medium, campaign, term, content)`},
		{"unknown source", `{"field":"member.first_name","op":"eq","value":"x"}`, `unknown field "member.first_name" (fields start with profile., custom. or form.)`},
		{"field case matters", `{"field":"Profile.first_name","op":"eq","value":"x"}`, `unknown field "Profile.first_name"`},
		{"field not string", `{"field":5,"op":"eq","value":"x"}`, "rule.field: expected a string"},
		{"op missing", `{"field":"profile.first_name","value":"x"}`, `trigger on "profile.first_name" needs an op string`},
		{"op not string", `{"field":"profile.first_name","op":1,"value":"x"}`, "needs an op string"},
		{"field extra key", `{"field":"profile.first_name","op":"eq","value":"x","negate":true}`, `unexpected key "negate"`},
		{"undeclared property", `{"field":"custom.color","op":"eq","value":"x"}`, `property "color" is not declared`},
		{"undeclared question", `{"field":"form.color","op":"eq","value":"x"}`, `question "color" is not declared`},
		{"property is not a question", `{"field":"form.plan","op":"is_set"}`, `question "plan" is not declared`},
		{"question is not a property", `{"field":"custom.company_size","op":"is_set"}`, `property "company_size" is not declared`},

		// Ops that do not fit the type.
		{"string has_any", `{"field":"profile.first_name","op":"has_any","value":["x"]}`, `op "has_any" does not apply to a string field (allowed: eq, neq, in, not_in, contains, not_contains, starts_with, ends_with, is_set, is_not_set)`},
		{"string lt", `{"field":"profile.email","op":"lt","value":"x"}`, `op "lt" does not apply to a string field`},
		{"string is_true", `{"field":"custom.nick","op":"is_true"}`, `op "is_true" does not apply to a string field`},
		{"utm before", `{"field":"profile.utm.source","op":"before","value":"2026-01-01T00:00:00Z"}`, `op "before" does not apply to a string field`},
		{"status eq", `{"field":"profile.status","op":"eq","value":"accepted"}`, `op "eq" does not apply to a status field (allowed: in, not_in, is_set, is_not_set)`},
		{"status contains", `{"field":"profile.status","op":"contains","value":"acc"}`, `op "contains" does not apply to a status field`},
		{"tags eq", `{"field":"profile.tags","op":"eq","value":"vip"}`, `op "eq" does not apply to a set field (allowed: has_any, has_all, has_none, is_set, is_not_set)`},
		{"tags in", `{"field":"profile.tags","op":"in","value":["vip"]}`, `op "in" does not apply to a set field`},
		{"static_groups contains", `{"field":"profile.static_groups","op":"contains","value":"s"}`, `op "contains" does not apply to a set field`},
		{"multi_select in", `{"field":"custom.interests","op":"in","value":["ai"]}`, `op "in" does not apply to a set field`},
		{"number before", `{"field":"custom.seats","op":"before","value":1}`, `op "before" does not apply to a number field (allowed: eq, neq, lt, lte, gt, gte, between, is_set, is_not_set)`},
		{"number in", `{"field":"form.age","op":"in","value":[1]}`, `op "in" does not apply to a number field`},
		{"date lt", `{"field":"profile.registered_at","op":"lt","value":"2026-01-01T00:00:00Z"}`, `op "lt" does not apply to a date field (allowed: before, after, between, within_last, more_than_ago, is_set, is_not_set)`},
		{"date eq", `{"field":"custom.renewal","op":"eq","value":"2026-01-01T00:00:00Z"}`, `op "eq" does not apply to a date field`},
		{"boolean eq", `{"field":"custom.beta","op":"eq","value":true}`, `op "eq" does not apply to a boolean field (allowed: is_true, is_false, is_set, is_not_set)`},
		{"single_select eq", `{"field":"custom.plan","op":"eq","value":"pro"}`, `op "eq" does not apply to a single_select field (allowed: in, not_in, is_set, is_not_set)`},
		{"single_select has_any", `{"field":"form.company_size","op":"has_any","value":["1-10"]}`, `op "has_any" does not apply to a single_select field`},
		{"unknown op", `{"field":"profile.first_name","op":"like","value":"x"}`, `op "like" does not apply to a string field`},
		{"op case matters", `{"field":"profile.first_name","op":"EQ","value":"x"}`, `op "EQ" does not apply`},

		// Wrong value shapes.
		{"string eq number", `{"field":"profile.first_name","op":"eq","value":5}`, "rule: profile.first_name eq: value must be a string"},
		{"string eq missing", `{"field":"profile.first_name","op":"eq"}`, "profile.first_name eq: value must be a string"},
		{"string eq array", `{"field":"profile.first_name","op":"eq","value":["x"]}`, "value must be a string"},
		{"string in string", `{"field":"profile.first_name","op":"in","value":"x"}`, "profile.first_name in: value must be an array of strings"},
		{"string in numbers", `{"field":"profile.role","op":"not_in","value":[1,2]}`, "profile.role not_in: value must be an array of strings"},
		{"string in empty", `{"field":"profile.role","op":"in","value":[]}`, "profile.role in: value must be a non-empty array"},
		{"string in null", `{"field":"profile.role","op":"in","value":null}`, "value must be an array of strings"},
		{"status not array", `{"field":"profile.status","op":"in","value":"accepted"}`, "value must be an array of strings"},
		{"status unknown", `{"field":"profile.status","op":"in","value":["accepted","banned"]}`, `profile.status in: "banned" is not a status (accepted, invited, pending, deactivated, unsubscribed, declined, rejected)`},
		{"status case", `{"field":"profile.status","op":"not_in","value":["Accepted"]}`, `"Accepted" is not a status`},
		{"tags not array", `{"field":"profile.tags","op":"has_any","value":"vip"}`, "profile.tags has_any: value must be an array of strings"},
		{"tags empty", `{"field":"profile.tags","op":"has_all","value":[]}`, "profile.tags has_all: value must be a non-empty array"},
		{"static group id empty", `{"field":"profile.static_groups","op":"has_any","value":[""]}`, "group id must be a non-empty string"},
		{"static group id too long", `{"field":"profile.static_groups","op":"has_any","value":["` + strings.Repeat("g", 257) + `"]}`, "group id is 257 bytes, longer than the limit of 256 bytes"},
		{"number string", `{"field":"custom.seats","op":"eq","value":"5"}`, "custom.seats eq: value must be a number"},
		{"number null", `{"field":"custom.seats","op":"gt","value":null}`, "custom.seats gt: value must be a number"},
		{"number between scalar", `{"field":"custom.seats","op":"between","value":5}`, "custom.seats between: value must be [lo, hi]"},
		{"number between one", `{"field":"custom.seats","op":"between","value":[5]}`, "value must be [lo, hi]"},
		{"number between three", `{"field":"custom.seats","op":"between","value":[1,2,3]}`, "value must be [lo, hi]"},
		{"number between strings", `{"field":"custom.seats","op":"between","value":["1","2"]}`, "value must be [lo, hi] of numbers"},
		{"number between reversed", `{"field":"custom.seats","op":"between","value":[5,1]}`, "custom.seats between: lo 5 is greater than hi 1"},
		{"date before garbage", `{"field":"profile.registered_at","op":"before","value":"yesterday"}`, `profile.registered_at before: value: "yesterday" is not an RFC 3339 timestamp with an offset`},
		{"date before no offset", `{"field":"profile.registered_at","op":"before","value":"2026-01-01T00:00:00"}`, "is not an RFC 3339 timestamp with an offset"},
		{"date before date only", `{"field":"profile.registered_at","op":"after","value":"2026-01-01"}`, "is not an RFC 3339 timestamp with an offset"},
		{"date before fraction", `{"field":"profile.registered_at","op":"after","value":1.5}`, "is not an integer of epoch milliseconds"},
		{"date before bool", `{"field":"profile.registered_at","op":"after","value":true}`, "value: expected an RFC 3339 timestamp with an offset or integer epoch milliseconds"},
		{"date between scalar", `{"field":"profile.invited_at","op":"between","value":"2026-01-01T00:00:00Z"}`, "profile.invited_at between: value must be [from, to]"},
		{"date between bad from", `{"field":"profile.invited_at","op":"between","value":["x","2026-01-01T00:00:00Z"]}`, "profile.invited_at between: from:"},
		{"date between bad to", `{"field":"profile.invited_at","op":"between","value":["2026-01-01T00:00:00Z","x"]}`, "profile.invited_at between: to:"},
		{"date between reversed", `{"field":"profile.invited_at","op":"between","value":["2026-01-02T00:00:00Z","2026-01-01T00:00:00Z"]}`, "profile.invited_at between: from is after to"},
		{"within_last number", `{"field":"profile.last_activity_at","op":"within_last","value":30}`, `profile.last_activity_at within_last: value must be {"days": N} or {"hours": N}`},
		{"within_last weeks", `{"field":"profile.last_activity_at","op":"within_last","value":{"weeks":1}}`, `value must be {"days": N} or {"hours": N}, not "weeks"`},
		{"within_last two units", `{"field":"profile.last_activity_at","op":"within_last","value":{"days":1,"hours":2}}`, `value must be {"days": N} or {"hours": N}`},
		{"within_last empty", `{"field":"profile.last_activity_at","op":"within_last","value":{}}`, `value must be {"days": N} or {"hours": N}`},
		{"within_last negative", `{"field":"profile.last_activity_at","op":"within_last","value":{"days":-1}}`, "days must be a whole number between 0 and 1000000"},
		{"within_last fraction", `{"field":"custom.renewal","op":"more_than_ago","value":{"hours":1.5}}`, "hours must be a whole number between 0 and 1000000"},
		{"within_last huge", `{"field":"custom.renewal","op":"more_than_ago","value":{"days":1000001}}`, "days must be a whole number between 0 and 1000000"},
		{"within_last string", `{"field":"form.joined","op":"within_last","value":{"days":"1"}}`, "days must be a whole number"},
		{"is_set with value", `{"field":"profile.first_name","op":"is_set","value":true}`, "profile.first_name is_set takes no value"},
		{"is_not_set with value", `{"field":"custom.plan","op":"is_not_set","value":["pro"]}`, "custom.plan is_not_set takes no value"},
		{"is_true with value", `{"field":"custom.beta","op":"is_true","value":true}`, "custom.beta is_true takes no value"},
		{"is_false with value", `{"field":"form.consent","op":"is_false","value":false}`, "form.consent is_false takes no value"},

		// Options.
		{"undeclared option", `{"field":"custom.plan","op":"in","value":["pro","enterprise"]}`, `custom.plan in: option "enterprise" is not declared for property "plan"`},
		{"option case", `{"field":"custom.interests","op":"has_any","value":["AI"]}`, `option "AI" is not declared for property "interests"`},
		{"option of another schema", `{"field":"form.company_size","op":"not_in","value":["free"]}`, `option "free" is not declared for question "company_size"`},
		{"multi option undeclared", `{"field":"form.goals","op":"has_none","value":["learn","fun"]}`, `option "fun" is not declared for question "goals"`},
		{"option not a string", `{"field":"custom.plan","op":"in","value":[1]}`, "value must be an array of strings"},

		// Activity triggers.
		{"unknown activity", `{"activity":"watched_live"}`, `rule: unknown activity type "watched_live"`},
		{"activity not string", `{"activity":7}`, "unknown activity type 7"},
		{"activity case", `{"activity":"Attended_Live"}`, `unknown activity type "Attended_Live"`},
		{"activity extra key", `{"activity":"attended_live","resource":"x"}`, `unexpected key "resource"`},
		{"resources not array", `{"activity":"attended_live","resources":"live-1"}`, "rule.resources: expected a non-empty array of resource ids"},
		{"resources empty", `{"activity":"attended_live","resources":[]}`, "rule.resources: expected a non-empty array of resource ids"},
		{"resources on resource-less type", `{"activity":"joined_spot","resources":["x"]}`, "rule.resources: joined_spot activities have no resource"},
		{"when not object", `{"activity":"attended_live","when":"recent"}`, "rule.when: expected an object with one date op"},
		{"when two ops", `{"activity":"attended_live","when":{"after":0,"before":1}}`, "rule.when: expected an object with one date op"},
		{"when unknown op", `{"activity":"attended_live","when":{"since":0}}`, `unknown date op "since"`},
		{"when bad duration", `{"activity":"attended_live","when":{"within_last":{"months":1}}}`, `not "months"`},
		{"count unknown op", `{"activity":"attended_live","count":{"gt":1}}`, `rule.count: unknown op "gt" (gte, lte, eq)`},
		{"count two ops", `{"activity":"attended_live","count":{"gte":1,"lte":3}}`, `rule.count: expected one of {"gte": N}, {"lte": N}, {"eq": N}`},
		{"count scalar", `{"activity":"attended_live","count":1}`, `rule.count: expected one of`},
		{"count negative", `{"activity":"attended_live","count":{"gte":-1}}`, "rule.count.gte: expected a whole number >= 0"},
		{"count fraction", `{"activity":"attended_live","count":{"eq":1.5}}`, "rule.count.eq: expected a whole number >= 0"},

		// Group triggers.
		{"missing group", `{"group":"nope"}`, `rule: group "nope" does not exist`},
		{"group empty", `{"group":""}`, "rule.group: expected a group id string"},
		{"group not string", `{"group":["vips"]}`, "rule.group: expected a group id string"},
		{"group extra key", `{"group":"vips","not":true}`, "unexpected key"},
		{"group in other spot", `{"all":[{"group":"vips"},{"group":"other-spot-group"}]}`, `rule.all[1]: group "other-spot-group" does not exist`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := CompileRule(json.RawMessage(c.rule), d.Catalog("acme"), DefaultLimits())
			require.Error(t, err, "rule %s compiled", c.rule)
			require.Nil(t, r)
			require.Contains(t, err.Error(), c.want)
		})
	}
}

// nestNot wraps a leaf in n "not" nodes: depth n+1.
func nestNot(n int) string {
	return strings.Repeat(`{"not":`, n) + `{"group":"vips"}` + strings.Repeat(`}`, n)
}

func anyOf(n int) string {
	leaves := make([]string, n)
	for i := range leaves {
		leaves[i] = `{"field":"profile.first_name","op":"is_set"}`
	}
	return `{"any":[` + strings.Join(leaves, ",") + `]}`
}

func tagList(n int) string {
	tags := make([]string, n)
	for i := range tags {
		tags[i] = fmt.Sprintf("%q", fmt.Sprintf("t%d", i))
	}
	return `{"field":"profile.tags","op":"has_any","value":[` + strings.Join(tags, ",") + `]}`
}

func TestCompileRuleLimits(t *testing.T) {
	d := testDefs(t)
	lim := DefaultLimits()
	ok := func(rule string) *Rule {
		t.Helper()
		r, err := CompileRule(json.RawMessage(rule), d.Catalog("acme"), lim)
		require.NoError(t, err)
		return r
	}
	bad := func(rule, want string) {
		t.Helper()
		_, err := CompileRule(json.RawMessage(rule), d.Catalog("acme"), lim)
		require.Error(t, err)
		require.Contains(t, err.Error(), want)
	}
	// Depth: 32 levels accepted, 33 rejected.
	ok(nestNot(31))
	bad(nestNot(32), "rule is deeper than the limit of 32 levels")
	bad(nestNot(500), "rule is deeper than the limit of 32 levels")
	// Nodes: 1,000 accepted, 1,001 rejected.
	r := ok(anyOf(999))
	require.Equal(t, 1000, r.Nodes)
	bad(anyOf(1000), "rule has more than the limit of 1000 nodes")
	// Value lists: 1,000 accepted, 1,001 rejected, for every list kind.
	ok(tagList(1000))
	bad(tagList(1001), "value list has 1001 entries, more than the limit of 1000")
	ins := make([]string, 1001)
	for i := range ins {
		ins[i] = fmt.Sprintf("n%d", i)
	}
	bad(fieldRule("profile.first_name", "in", ins), "value list has 1001 entries, more than the limit of 1000")
	ok(fieldRule("profile.first_name", "in", ins[:1000]))
	bad(fieldRule("profile.static_groups", "has_all", ins), "more than the limit of 1000")
	res, _ := json.Marshal(ins)
	bad(`{"activity":"attended_live","resources":`+string(res)+`}`, "rule.resources: 1001 entries, more than the limit of 1000")
	res, _ = json.Marshal(ins[:1000])
	ok(`{"activity":"attended_live","resources":` + string(res) + `}`)

	// Configured limits apply.
	lim = Limits{MaxRecordBytes: 1 << 20, MaxRuleDepth: 3, MaxRuleNodes: 4, MaxValues: 2, MaxTags: 10}
	ok(nestNot(2))
	bad(nestNot(3), "rule is deeper than the limit of 3 levels")
	ok(anyOf(3))
	bad(anyOf(4), "rule has more than the limit of 4 nodes")
	ok(tagList(2))
	bad(tagList(3), "value list has 3 entries, more than the limit of 2")
}

func TestCompileRuleCanonical(t *testing.T) {
	d := testDefs(t)
	r := compile(t, d, " {\n \"all\" : [ {\"group\": \"vips\"} , {\"field\":\"profile.tags\",\"op\":\"has_any\",\"value\":[\"a\"]}]}\n")
	require.Equal(t, `{"all":[{"group":"vips"},{"field":"profile.tags","op":"has_any","value":["a"]}]}`, r.Canonical)
	r2 := compile(t, d, r.Canonical)
	require.Equal(t, r.Canonical, r2.Canonical)
	require.Equal(t, r.Deps, r2.Deps)
}

// ---- definition checks (Defs.Check) ----

func defRec(key, value string) Record {
	r := Record{Kind: KindDefinitions, Topic: "definitions", Key: []byte(key)}
	if value != "null" {
		r.Value = []byte(value)
	}
	return r
}

// applyDef decodes, checks and applies a definition; it returns the error
// of the decode or the check, if any.
func applyDef(t testing.TB, d *Defs, key, value string) *RecordError {
	t.Helper()
	dc, rerr := DecodeDefinition(defRec(key, value), d.lim)
	if rerr != nil {
		return rerr
	}
	if rerr := d.Check(dc); rerr != nil {
		return rerr
	}
	d.Apply(dc)
	return nil
}

func mustDef(t testing.TB, d *Defs, key, value string) {
	t.Helper()
	require.Nil(t, applyDef(t, d, key, value), "definition %s", key)
}

func groupJSON(id, typ, rule string) string {
	if rule == "" {
		return fmt.Sprintf(`{"kind":"group","spot":"acme","id":%q,"type":%q,"name":"G %s"}`, id, typ, id)
	}
	return fmt.Sprintf(`{"kind":"group","spot":"acme","id":%q,"type":%q,"name":"G %s","rule":%s}`, id, typ, id, rule)
}

// checkDefs builds definitions through the same checks the engine uses.
func checkDefs(t testing.TB) *Defs {
	t.Helper()
	d := NewDefs(DefaultLimits())
	var schemas []json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(testSchemas), &schemas))
	for _, s := range schemas {
		var head struct{ Kind, ID string }
		require.NoError(t, json.Unmarshal(s, &head))
		mustDef(t, d, "acme/"+head.Kind+"/"+head.ID, string(s))
	}
	mustDef(t, d, "acme/group/st", groupJSON("st", "static", ""))
	mustDef(t, d, "acme/group/st2", groupJSON("st2", "static", ""))
	mustDef(t, d, "acme/group/g1", groupJSON("g1", "smart", `{"field":"profile.tags","op":"has_any","value":["vip"]}`))
	mustDef(t, d, "acme/group/g2", groupJSON("g2", "smart", `{"all":[{"group":"g1"},{"group":"st"}]}`))
	mustDef(t, d, "acme/group/g3", groupJSON("g3", "smart", `{"any":[{"group":"g2"},{"field":"custom.plan","op":"in","value":["pro"]},{"field":"form.goals","op":"has_any","value":["learn"]}]}`))
	mustDef(t, d, "acme/group/g4", groupJSON("g4", "smart", `{"field":"profile.static_groups","op":"has_any","value":["st2"]}`))
	return d
}

func TestDefsCheckRejects(t *testing.T) {
	cases := []struct {
		name       string
		key, value string
		code, want string
	}{
		{"self cycle", "acme/group/g5", groupJSON("g5", "smart", `{"group":"g5"}`), "cycle", `group "g5": group triggers would form a cycle: g5 -> g5`},
		{"two-step cycle", "acme/group/g1", groupJSON("g1", "smart", `{"group":"g2"}`), "cycle", "group triggers would form a cycle: g1 -> g2 -> g1"},
		{"three-step cycle", "acme/group/g1", groupJSON("g1", "smart", `{"not":{"group":"g3"}}`), "cycle", "g1 -> g3 -> g2 -> g1"},
		{"invalid rule", "acme/group/g5", groupJSON("g5", "smart", `{"field":"custom.nope","op":"is_set"}`), "invalid_rule", `group "g5": rule: property "nope" is not declared`},
		{"rule names missing group", "acme/group/g5", groupJSON("g5", "smart", `{"group":"gone"}`), "invalid_rule", `group "gone" does not exist`},
		{"static to smart", "acme/group/st", groupJSON("st", "smart", `{"all":[]}`), "group_type_change", `group "st" is static; a group's type cannot change`},
		{"smart to static", "acme/group/g1", groupJSON("g1", "static", ""), "group_type_change", `group "g1" is smart; a group's type cannot change`},
		{"delete group referenced by trigger", "acme/group/g1", "null", "referenced", `group "g1" is referenced by smart group(s) g2`},
		{"delete static group referenced by trigger", "acme/group/st", "null", "referenced", `group "st" is referenced by smart group(s) g2`},
		{"delete static group referenced by static_groups", "acme/group/st2", "null", "referenced", `group "st2" is referenced by smart group(s) g4`},
		{"delete referenced property", "acme/property/plan", "null", "referenced", `property "plan" is referenced by smart group(s) g3`},
		{"delete referenced question", "acme/question/goals", "null", "referenced", `question "goals" is referenced by smart group(s) g3`},
		{"remove referenced option", "acme/property/plan",
			`{"kind":"property","spot":"acme","id":"plan","label":"Plan","type":"single_select","options":[{"id":"free","label":"Free"}]}`,
			"referenced", `option "pro" of property "plan" is referenced by smart group(s) g3`},
		{"remove referenced question option", "acme/question/goals",
			`{"kind":"question","spot":"acme","id":"goals","label":"Goals","type":"multi_select","options":[{"id":"network","label":"N"}]}`,
			"referenced", `option "learn" of question "goals" is referenced by smart group(s) g3`},
		{"type change while referenced", "acme/property/plan",
			`{"kind":"property","spot":"acme","id":"plan","label":"Plan","type":"multi_select","options":[{"id":"free","label":"Free"},{"id":"pro","label":"Pro"}]}`,
			"referenced", `property "plan" cannot change type from single_select to multi_select while referenced by smart group(s) g3`},
		{"type change to text while referenced", "acme/question/goals",
			`{"kind":"question","spot":"acme","id":"goals","label":"Goals","type":"text"}`,
			"referenced", `question "goals" cannot change type from multi_select to text while referenced by smart group(s) g3`},
		{"blacklist unknown group", "acme/blacklist/nope/u1", `{"kind":"blacklist","spot":"acme","group":"nope","member":"u1"}`, "unknown_group", `blacklist entry for group "nope", which does not exist`},
		{"blacklist static group", "acme/blacklist/st/u1", `{"kind":"blacklist","spot":"acme","group":"st","member":"u1"}`, "invalid_definition", `group "st" is static; only smart groups have a blacklist`},
		{"blacklist other spot", "other/blacklist/g1/u1", `{"kind":"blacklist","spot":"other","group":"g1","member":"u1"}`, "unknown_group", `blacklist entry for group "g1", which does not exist`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := checkDefs(t)
			before := d.Spot("acme").Fingerprint("g1") + d.Spot("acme").Fingerprint("g3")
			rerr := applyDef(t, d, c.key, c.value)
			require.NotNil(t, rerr)
			require.Equal(t, c.code, rerr.Code, rerr.Reason)
			require.Contains(t, rerr.Reason, c.want)
			// The previous definitions stay in force.
			sd := d.Spot("acme")
			require.Equal(t, before, sd.Fingerprint("g1")+sd.Fingerprint("g3"))
			for _, id := range []string{"st", "st2", "g1", "g2", "g3", "g4"} {
				require.NotNil(t, sd.Groups[id], id)
			}
			require.NotNil(t, sd.Properties["plan"])
			require.NotNil(t, sd.Questions["goals"])
			require.Equal(t, []string{"g1", "g2", "g3", "g4"}, sd.Order())
		})
	}
}

func TestDefsCheckAccepts(t *testing.T) {
	cases := []struct {
		name, key, value string
	}{
		{"delete unreferenced property", "acme/property/seats", "null"},
		{"delete unreferenced question", "acme/question/bio", "null"},
		{"delete unreferenced smart group", "acme/group/g3", "null"},
		{"delete unknown group", "acme/group/zzz", "null"},
		{"delete blacklist of unknown group", "acme/blacklist/zzz/u1", "null"},
		{"type change of unreferenced property", "acme/property/seats", `{"kind":"property","spot":"acme","id":"seats","label":"Seats","type":"text"}`},
		{"add an option to a referenced property", "acme/property/plan",
			`{"kind":"property","spot":"acme","id":"plan","label":"Plan","type":"single_select","options":[{"id":"free","label":"Free"},{"id":"pro","label":"Pro!"},{"id":"team","label":"Team"}]}`},
		{"remove an unreferenced option", "acme/property/plan",
			`{"kind":"property","spot":"acme","id":"plan","label":"Plan","type":"single_select","options":[{"id":"pro","label":"Pro"}]}`},
		{"relabel a referenced property", "acme/property/plan",
			`{"kind":"property","spot":"acme","id":"plan","label":"Subscription","type":"single_select","options":[{"id":"free","label":"F"},{"id":"pro","label":"P"}]}`},
		{"update a smart group", "acme/group/g1", groupJSON("g1", "smart", `{"field":"profile.tags","op":"has_any","value":["vip","gold"]}`)},
		{"rename a static group", "acme/group/st", groupJSON("st", "static", "")},
		{"a diamond is not a cycle", "acme/group/g5", groupJSON("g5", "smart", `{"all":[{"group":"g1"},{"group":"g2"},{"group":"g3"}]}`)},
		{"blacklist a smart group", "acme/blacklist/g1/u1", `{"kind":"blacklist","spot":"acme","group":"g1","member":"u1"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := checkDefs(t)
			require.Nil(t, applyDef(t, d, c.key, c.value))
		})
	}
}

func TestDefsGroupDeleteDropsBlacklist(t *testing.T) {
	d := checkDefs(t)
	mustDef(t, d, "acme/blacklist/g3/u1", `{"kind":"blacklist","spot":"acme","group":"g3","member":"u1"}`)
	require.True(t, d.Blacklisted("acme", "g3", "u1"))
	// An update keeps the blacklist.
	mustDef(t, d, "acme/group/g3", groupJSON("g3", "smart", `{"all":[]}`))
	require.True(t, d.Blacklisted("acme", "g3", "u1"))
	// A delete drops it, so a new group of the same id starts clean.
	mustDef(t, d, "acme/group/g3", "null")
	require.False(t, d.Blacklisted("acme", "g3", "u1"))
	mustDef(t, d, "acme/group/g3", groupJSON("g3", "smart", `{"all":[]}`))
	require.False(t, d.Blacklisted("acme", "g3", "u1"))
	// Deleting a blacklist entry.
	mustDef(t, d, "acme/blacklist/g3/u2", `{"kind":"blacklist","spot":"acme","group":"g3","member":"u2"}`)
	mustDef(t, d, "acme/blacklist/g3/u2", "null")
	require.False(t, d.Blacklisted("acme", "g3", "u2"))
}

func TestDefsOrderAndReaders(t *testing.T) {
	d := checkDefs(t)
	sd := d.Spot("acme")
	require.Equal(t, []string{"g1", "g2", "g3", "g4"}, sd.Order())
	require.Equal(t, []string{"g1"}, sd.Readers("p.tags"))
	require.Equal(t, []string{"g2"}, sd.Readers("g.g1"))
	require.Equal(t, []string{"g2", "g4"}, sd.Readers("p.static_groups"))
	require.Equal(t, []string{"g3"}, sd.Readers("c.plan"))
	require.Equal(t, []string{"g3"}, sd.Dependents("g2"))
	require.Equal(t, []string{"g2"}, sd.Dependents("st"))
	require.Equal(t, []string{"g3"}, sd.ReferencingSchema("question", "goals"))
	require.Equal(t, []string{"g3"}, sd.ReferencingOption("property", "plan", "pro"))
	require.Empty(t, sd.ReferencingOption("property", "plan", "free"))
	require.Equal(t, []string{"g1"}, sd.ReferencingTag("VIP"))
	// A new group sorting before its dependency still comes after it.
	mustDef(t, d, "acme/group/a0", groupJSON("a0", "smart", `{"group":"g3"}`))
	require.Equal(t, []string{"g1", "g2", "g3", "a0", "g4"}, sd.Order())
}

// TestDefsSchemaChangeRecompilesWithConfiguredLimits: after a schema
// change, the rules reading it are recompiled; with configured limits
// above the defaults the recompiled rule must still see the new schema.
func TestDefsSchemaChangeRecompilesWithConfiguredLimits(t *testing.T) {
	lim := DefaultLimits()
	lim.MaxValues = 2000
	d := NewDefs(lim)
	mustDef(t, d, "acme/property/plan", `{"kind":"property","spot":"acme","id":"plan","label":"Plan","type":"single_select","options":[{"id":"free","label":"Free"}]}`)
	tags := make([]string, 1500)
	for i := range tags {
		tags[i] = fmt.Sprintf("t%d", i)
	}
	rule := `{"all":[` + fieldRule("profile.tags", "has_none", tags) + `,{"field":"custom.plan","op":"is_set"}]}`
	mustDef(t, d, "acme/group/g", groupJSON("g", "smart", rule))
	// Declare a new option; a member holding it must now count as set.
	mustDef(t, d, "acme/property/plan", `{"kind":"property","spot":"acme","id":"plan","label":"Plan","type":"single_select","options":[{"id":"free","label":"Free"},{"id":"team","label":"Team"}]}`)
	m := &tMember{custom: raws("plan", `"team"`)}
	v, err := Eval(d.Spot("acme").Groups["g"].Compiled(), m, 0)
	require.NoError(t, err)
	if !v {
		t.Fatal(`SpotDefs.recompile compiles with DefaultLimits() instead of the configured limits; a rule valid under the configured limits fails to recompile and keeps pointing at the replaced schema (option "team" unknown)`)
	}
}
