package engine

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smartgroups/smartgroups/engine/rule"
)

// ---- shared test helpers (used by the other _test.go files too) ----

// ms parses an RFC 3339 instant for tests.
func ms(s string) rule.Millis {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UnixMilli()
}

// tMember is an in-memory MemberView.
type tMember struct {
	p      rule.Profile
	custom map[string]json.RawMessage
	form   map[string]json.RawMessage
	acts   []rule.Activity
	groups map[string]bool
}

var _ rule.MemberView = (*tMember)(nil)

func (m *tMember) Profile() *rule.Profile { return &m.p }
func (m *tMember) Custom(id string) (json.RawMessage, bool) {
	v, ok := m.custom[id]
	return v, ok
}
func (m *tMember) Form(id string) (json.RawMessage, bool) {
	v, ok := m.form[id]
	return v, ok
}
func (m *tMember) LastActivity() (rule.Millis, bool) {
	if len(m.acts) == 0 {
		return 0, false
	}
	best := m.acts[0].TS
	for _, a := range m.acts[1:] {
		if a.TS > best {
			best = a.TS
		}
	}
	return best, true
}
func (m *tMember) Activities(typ string) ([]rule.Activity, error) {
	var out []rule.Activity
	for _, a := range m.acts {
		if a.Type == typ {
			out = append(out, a)
		}
	}
	return out, nil
}
func (m *tMember) InSmartGroup(id string) bool { return m.groups[id] }

// testSchemas are the property and question schemas of spot "acme" in
// rule and eval tests.
const testSchemas = `[
 {"kind":"property","spot":"acme","id":"plan","label":"Plan","type":"single_select","options":[{"id":"free","label":"Free"},{"id":"pro","label":"Pro"}]},
 {"kind":"property","spot":"acme","id":"seats","label":"Seats","type":"number"},
 {"kind":"property","spot":"acme","id":"renewal","label":"Renewal","type":"date"},
 {"kind":"property","spot":"acme","id":"beta","label":"Beta","type":"boolean"},
 {"kind":"property","spot":"acme","id":"nick","label":"Nickname","type":"text"},
 {"kind":"property","spot":"acme","id":"interests","label":"Interests","type":"multi_select","options":[{"id":"ai","label":"AI"},{"id":"go","label":"Go"},{"id":"rust","label":"Rust"}]},
 {"kind":"question","spot":"acme","id":"company_size","label":"Company size","type":"single_select","options":[{"id":"1-10","label":"1-10"},{"id":"11-50","label":"11-50"}]},
 {"kind":"question","spot":"acme","id":"goals","label":"Goals","type":"multi_select","options":[{"id":"learn","label":"Learn"},{"id":"network","label":"Network"}]},
 {"kind":"question","spot":"acme","id":"bio","label":"Bio","type":"text"},
 {"kind":"question","spot":"acme","id":"age","label":"Age","type":"number"},
 {"kind":"question","spot":"acme","id":"joined","label":"Joined","type":"date"},
 {"kind":"question","spot":"acme","id":"consent","label":"Consent","type":"boolean"}
]`

// testDefs returns definitions of spot "acme" with the test schemas, a
// static group "beta-testers", a static group "s2" and a smart group
// "vips" (tags has_any vip).
func testDefs(t testing.TB) *Defs {
	t.Helper()
	d := NewDefs(DefaultLimits())
	var schemas []*rule.Schema
	require.NoError(t, json.Unmarshal([]byte(testSchemas), &schemas))
	for _, s := range schemas {
		require.NoError(t, s.Validate())
		d.LoadSchema(s)
	}
	d.LoadGroup(&GroupDef{Kind: "group", Spot: "acme", ID: "beta-testers", Type: GroupStatic, Name: "Beta"})
	d.LoadGroup(&GroupDef{Kind: "group", Spot: "acme", ID: "s2", Type: GroupStatic, Name: "S2"})
	d.LoadGroup(&GroupDef{Kind: "group", Spot: "acme", ID: "vips", Type: GroupSmart, Name: "VIPs",
		Rule: json.RawMessage(`{"field":"profile.tags","op":"has_any","value":["vip"]}`)})
	require.NoError(t, d.Finish())
	return d
}

func fieldRule(field, op string, value any) string {
	if value == nil {
		return fmt.Sprintf(`{"field":%q,"op":%q}`, field, op)
	}
	b, err := json.Marshal(value)
	if err != nil {
		panic(err)
	}
	return fmt.Sprintf(`{"field":%q,"op":%q,"value":%s}`, field, op, b)
}

func raws(kv ...string) map[string]json.RawMessage {
	m := map[string]json.RawMessage{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = json.RawMessage(kv[i+1])
	}
	return m
}
