package engine

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/smartgroups/smartgroups/engine/rule"
)

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
		code       Code
		want       string
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
	r := `{"all":[` + fieldRule("profile.tags", "has_none", tags) + `,{"field":"custom.plan","op":"is_set"}]}`
	mustDef(t, d, "acme/group/g", groupJSON("g", "smart", r))
	// Declare a new option; a member holding it must now count as set.
	mustDef(t, d, "acme/property/plan", `{"kind":"property","spot":"acme","id":"plan","label":"Plan","type":"single_select","options":[{"id":"free","label":"Free"},{"id":"team","label":"Team"}]}`)
	m := &tMember{custom: raws("plan", `"team"`)}
	v, err := rule.Eval(d.Spot("acme").Groups["g"].Compiled(), m, 0)
	require.NoError(t, err)
	if !v {
		t.Fatal(`SpotDefs.recompile compiles with DefaultLimits() instead of the configured limits; a rule valid under the configured limits fails to recompile and keeps pointing at the replaced schema (option "team" unknown)`)
	}
}
