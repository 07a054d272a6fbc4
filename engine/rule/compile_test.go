package rule

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
	lim = Limits{MaxRuleDepth: 3, MaxRuleNodes: 4, MaxValues: 2}
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
