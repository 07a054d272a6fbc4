package rule

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// ---- shared test helpers (used by the other _test.go files too) ----

const (
	msHour = Millis(3600 * 1000)
	msDay  = 24 * msHour
)

// ms parses an RFC 3339 instant for tests.
func ms(s string) Millis {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UnixMilli()
}

func sp(s string) *string { return &s }
func mp(m Millis) *Millis { return &m }

// tMember is an in-memory MemberView.
type tMember struct {
	p      Profile
	custom map[string]json.RawMessage
	form   map[string]json.RawMessage
	acts   []Activity
	groups map[string]bool
}

var _ MemberView = (*tMember)(nil)

func (m *tMember) Profile() *Profile { return &m.p }
func (m *tMember) Custom(id string) (json.RawMessage, bool) {
	v, ok := m.custom[id]
	return v, ok
}
func (m *tMember) Form(id string) (json.RawMessage, bool) {
	v, ok := m.form[id]
	return v, ok
}
func (m *tMember) LastActivity() (Millis, bool) {
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
func (m *tMember) Activities(typ string) ([]Activity, error) {
	var out []Activity
	for _, a := range m.acts {
		if a.Type == typ {
			out = append(out, a)
		}
	}
	// Sorted by ts, as MemberView requires.
	sort.SliceStable(out, func(i, j int) bool { return out[i].TS < out[j].TS })
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

// testCatalog is a Catalog of the names rules in the tests refer to.
type testCatalog struct {
	properties, questions map[string]*Schema
	groups                map[string]bool // id -> smart
}

func (c *testCatalog) Catalog(string) Catalog { return c }

func (c *testCatalog) Property(id string) (*Schema, bool) {
	s, ok := c.properties[id]
	return s, ok
}

func (c *testCatalog) Question(id string) (*Schema, bool) {
	s, ok := c.questions[id]
	return s, ok
}

func (c *testCatalog) Group(id string) (smart, ok bool) {
	smart, ok = c.groups[id]
	return smart, ok
}

// testDefs returns the catalog of spot "acme": the test schemas, a static
// group "beta-testers", a static group "s2" and a smart group "vips".
func testDefs(t testing.TB) *testCatalog {
	t.Helper()
	c := &testCatalog{properties: map[string]*Schema{}, questions: map[string]*Schema{},
		groups: map[string]bool{"beta-testers": false, "s2": false, "vips": true}}
	var schemas []*Schema
	require.NoError(t, json.Unmarshal([]byte(testSchemas), &schemas))
	for _, s := range schemas {
		require.NoError(t, s.Validate())
		if s.Kind == "question" {
			c.questions[s.ID] = s
		} else {
			c.properties[s.ID] = s
		}
	}
	return c
}

func compile(t testing.TB, d *testCatalog, rule string) *Rule {
	t.Helper()
	r, err := CompileRule(json.RawMessage(rule), d.Catalog("acme"), DefaultLimits())
	require.NoError(t, err, "rule %s", rule)
	return r
}

// evalNow is the engine's now in the eval tests.
var evalNow = ms("2026-11-20T12:00:00Z")

type evalCase struct {
	name string
	rule string
	m    *tMember
	now  Millis // 0: evalNow
	want bool
}

func runEvalCases(t *testing.T, cases []evalCase) {
	t.Helper()
	d := testDefs(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := compile(t, d, c.rule)
			now := c.now
			if now == 0 {
				now = evalNow
			}
			m := c.m
			if m == nil {
				m = &tMember{}
			}
			got, err := Eval(r, m, now)
			require.NoError(t, err)
			require.Equal(t, c.want, got, "rule %s", c.rule)
			// Explain must agree with Eval.
			ev, ex, err := Explain(r, m, now)
			require.NoError(t, err)
			require.Equal(t, got, ev)
			require.Equal(t, got, ex["value"])
		})
	}
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

// stringField describes how to give a member a value of a string field.
type stringField struct {
	field string
	set   func(m *tMember, v string)
}

var stringFields = []stringField{
	{"profile.first_name", func(m *tMember, v string) { m.p.FirstName = &v }},
	{"profile.last_name", func(m *tMember, v string) { m.p.LastName = &v }},
	{"profile.email", func(m *tMember, v string) { m.p.Email = &v }},
	{"profile.title", func(m *tMember, v string) { m.p.Title = &v }},
	{"profile.role", func(m *tMember, v string) { m.p.Role = &v }},
	{"profile.language", func(m *tMember, v string) { m.p.Language = &v }},
	{"profile.utm.source", func(m *tMember, v string) { m.p.UTM = map[string]string{"source": v} }},
	{"profile.utm.medium", func(m *tMember, v string) { m.p.UTM = map[string]string{"medium": v} }},
	{"profile.utm.campaign", func(m *tMember, v string) { m.p.UTM = map[string]string{"campaign": v} }},
	{"profile.utm.term", func(m *tMember, v string) { m.p.UTM = map[string]string{"term": v} }},
	{"profile.utm.content", func(m *tMember, v string) { m.p.UTM = map[string]string{"content": v} }},
	{"custom.nick", func(m *tMember, v string) { m.custom = raws("nick", jsonOf(v)) }},
	{"form.bio", func(m *tMember, v string) { m.form = raws("bio", jsonOf(v)) }},
}

func jsonOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func raws(kv ...string) map[string]json.RawMessage {
	m := map[string]json.RawMessage{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = json.RawMessage(kv[i+1])
	}
	return m
}

func TestEvalStringOps(t *testing.T) {
	type sc struct {
		member *string // nil: unset
		op     string
		value  any
		want   bool
	}
	u := (*string)(nil)
	cases := []sc{
		// eq / neq, Unicode simple case folding.
		{sp("école"), "eq", "ÉCOLE", true},
		{sp("ÉCOLE"), "eq", "école", true},
		{sp("\u212Aelvin"), "eq", "kelvin", true}, // KELVIN SIGN folds to k
		{sp("kelvin"), "eq", "\u212AELVIN", true},
		{sp("ſtop"), "eq", "STOP", true},       // LATIN SMALL LETTER LONG S folds to s
		{sp("ΣΊΣΥΦΟΣ"), "eq", "σίσυφος", true}, // final and non-final sigma
		{sp("straße"), "eq", "STRASSE", false}, // ß -> SS is full, not simple, folding
		{sp("abc"), "eq", "abd", false},
		{sp("abc"), "eq", "ab", false},
		{u, "eq", "abc", false},
		{sp("école"), "neq", "ÉCOLE", false},
		{sp("abc"), "neq", "abd", true},
		{u, "neq", "abc", true},
		// in / not_in
		{sp("école"), "in", []string{"x", "ÉCOLE"}, true},
		{sp("\u212A"), "in", []string{"k"}, true},
		{sp("b"), "in", []string{"a", "c"}, false},
		{u, "in", []string{"a"}, false},
		{sp("école"), "not_in", []string{"x", "ÉCOLE"}, false},
		{sp("b"), "not_in", []string{"a", "c"}, true},
		{u, "not_in", []string{"a"}, true},
		// contains / not_contains
		{sp("École Normale"), "contains", "LE NOR", true},
		{sp("école"), "contains", "ÉC", true},
		{sp("mar\u212Aet"), "contains", "rke", true},
		{sp("école"), "contains", "x", false},
		{u, "contains", "a", false},
		{sp("école"), "not_contains", "ÉC", false},
		{sp("école"), "not_contains", "x", true},
		{u, "not_contains", "a", true},
		// starts_with / ends_with
		{sp("école"), "starts_with", "ÉCO", true},
		{sp("école"), "starts_with", "cole", false},
		{sp("\u212Aiwi"), "starts_with", "ki", true},
		{u, "starts_with", "a", false},
		{sp("école"), "ends_with", "OLE", true},
		{sp("ÉCOLE"), "ends_with", "école", true},
		{sp("école"), "ends_with", "éco", false},
		{u, "ends_with", "a", false},
		// is_set / is_not_set
		{sp("x"), "is_set", nil, true},
		{sp(""), "is_set", nil, true}, // an empty string is a value
		{u, "is_set", nil, false},
		{sp("x"), "is_not_set", nil, false},
		{u, "is_not_set", nil, true},
	}
	var ec []evalCase
	for _, f := range stringFields {
		for i, c := range cases {
			m := &tMember{}
			if c.member != nil {
				f.set(m, *c.member)
			}
			mv := "<unset>"
			if c.member != nil {
				mv = *c.member
			}
			ec = append(ec, evalCase{
				name: fmt.Sprintf("%s/%d_%s_%s_%v", f.field, i, mv, c.op, c.value),
				rule: fieldRule(f.field, c.op, c.value), m: m, want: c.want,
			})
		}
	}
	runEvalCases(t, ec)
}

func TestEvalUTMOtherKeyIsUnset(t *testing.T) {
	m := &tMember{p: Profile{UTM: map[string]string{"medium": "email"}}}
	runEvalCases(t, []evalCase{
		{"source unset", fieldRule("profile.utm.source", "is_set", nil), m, 0, false},
		{"source neq", fieldRule("profile.utm.source", "neq", "email"), m, 0, true},
		{"medium eq", fieldRule("profile.utm.medium", "eq", "EMAIL"), m, 0, true},
	})
}

func TestEvalCustomTextNotAString(t *testing.T) {
	// A kept value that does not fit the property's current type is unset.
	for _, raw := range []string{`5`, `true`, `["a"]`, `{"a":1}`} {
		m := &tMember{custom: raws("nick", raw), form: raws("bio", raw)}
		runEvalCases(t, []evalCase{
			{"custom eq " + raw, fieldRule("custom.nick", "eq", "5"), m, 0, false},
			{"custom neq " + raw, fieldRule("custom.nick", "neq", "5"), m, 0, true},
			{"custom is_set " + raw, fieldRule("custom.nick", "is_set", nil), m, 0, false},
			{"custom is_not_set " + raw, fieldRule("custom.nick", "is_not_set", nil), m, 0, true},
			{"form contains " + raw, fieldRule("form.bio", "contains", "a"), m, 0, false},
			{"form not_contains " + raw, fieldRule("form.bio", "not_contains", "a"), m, 0, true},
		})
	}
}

func TestEvalStatus(t *testing.T) {
	var ec []evalCase
	for _, s := range Statuses {
		m := &tMember{p: Profile{Status: sp(s)}}
		in := s == "accepted" || s == "invited"
		ec = append(ec,
			evalCase{"in/" + s, fieldRule("profile.status", "in", []string{"accepted", "invited"}), m, 0, in},
			evalCase{"not_in/" + s, fieldRule("profile.status", "not_in", []string{"accepted", "invited"}), m, 0, !in},
			evalCase{"is_set/" + s, fieldRule("profile.status", "is_set", nil), m, 0, true},
			evalCase{"is_not_set/" + s, fieldRule("profile.status", "is_not_set", nil), m, 0, false},
		)
	}
	unset := &tMember{}
	ec = append(ec,
		evalCase{"in/unset", fieldRule("profile.status", "in", Statuses), unset, 0, false},
		evalCase{"not_in/unset", fieldRule("profile.status", "not_in", []string{"accepted"}), unset, 0, true},
		evalCase{"is_set/unset", fieldRule("profile.status", "is_set", nil), unset, 0, false},
		evalCase{"is_not_set/unset", fieldRule("profile.status", "is_not_set", nil), unset, 0, true},
	)
	runEvalCases(t, ec)
}

func TestEvalSets(t *testing.T) {
	tags := &tMember{p: Profile{Tags: []string{"VIP", "École", "\u212Aey"}}}
	noTags := &tMember{}
	emptyTags := &tMember{p: Profile{Tags: []string{}}}
	sg := &tMember{p: Profile{StaticGroups: []string{"beta-testers", "s2"}}}
	emptySG := &tMember{p: Profile{StaticGroups: []string{}}}
	multi := &tMember{custom: raws("interests", `["ai","go","dropped"]`), form: raws("goals", `["learn"]`)}
	onlyUndeclared := &tMember{custom: raws("interests", `["dropped","AI"]`), form: raws("goals", `[]`)}
	multiWrongType := &tMember{custom: raws("interests", `"ai"`), form: raws("goals", `{"learn":true}`)}
	runEvalCases(t, []evalCase{
		// tags: case-insensitive
		{"tags has_any", fieldRule("profile.tags", "has_any", []string{"vip"}), tags, 0, true},
		{"tags has_any folded", fieldRule("profile.tags", "has_any", []string{"x", "ÉCOLE"}), tags, 0, true},
		{"tags has_any kelvin", fieldRule("profile.tags", "has_any", []string{"KEY"}), tags, 0, true},
		{"tags has_any none", fieldRule("profile.tags", "has_any", []string{"x", "y"}), tags, 0, false},
		{"tags has_all", fieldRule("profile.tags", "has_all", []string{"vip", "école"}), tags, 0, true},
		{"tags has_all missing", fieldRule("profile.tags", "has_all", []string{"vip", "x"}), tags, 0, false},
		{"tags has_none", fieldRule("profile.tags", "has_none", []string{"x", "y"}), tags, 0, true},
		{"tags has_none hit", fieldRule("profile.tags", "has_none", []string{"x", "Vip"}), tags, 0, false},
		{"tags is_set", fieldRule("profile.tags", "is_set", nil), tags, 0, true},
		{"tags is_not_set", fieldRule("profile.tags", "is_not_set", nil), tags, 0, false},
		{"no tags has_any", fieldRule("profile.tags", "has_any", []string{"vip"}), noTags, 0, false},
		{"no tags has_all", fieldRule("profile.tags", "has_all", []string{"vip"}), noTags, 0, false},
		{"no tags has_none", fieldRule("profile.tags", "has_none", []string{"vip"}), noTags, 0, true},
		{"no tags is_set", fieldRule("profile.tags", "is_set", nil), noTags, 0, false},
		{"no tags is_not_set", fieldRule("profile.tags", "is_not_set", nil), noTags, 0, true},
		{"empty tags is_set", fieldRule("profile.tags", "is_set", nil), emptyTags, 0, false},
		{"empty tags is_not_set", fieldRule("profile.tags", "is_not_set", nil), emptyTags, 0, true},
		{"empty tags has_none", fieldRule("profile.tags", "has_none", []string{"a"}), emptyTags, 0, true},
		{"empty tags has_all", fieldRule("profile.tags", "has_all", []string{"a"}), emptyTags, 0, false},
		// static_groups: exact
		{"sg has_any", fieldRule("profile.static_groups", "has_any", []string{"beta-testers"}), sg, 0, true},
		{"sg has_any case", fieldRule("profile.static_groups", "has_any", []string{"Beta-Testers"}), sg, 0, false},
		{"sg has_all", fieldRule("profile.static_groups", "has_all", []string{"s2", "beta-testers"}), sg, 0, true},
		{"sg has_all missing", fieldRule("profile.static_groups", "has_all", []string{"s2", "s3"}), sg, 0, false},
		{"sg has_none", fieldRule("profile.static_groups", "has_none", []string{"s3"}), sg, 0, true},
		{"sg has_none case", fieldRule("profile.static_groups", "has_none", []string{"S2"}), sg, 0, true},
		{"sg has_none hit", fieldRule("profile.static_groups", "has_none", []string{"s2"}), sg, 0, false},
		{"sg is_set", fieldRule("profile.static_groups", "is_set", nil), sg, 0, true},
		{"sg unset has_any", fieldRule("profile.static_groups", "has_any", []string{"s2"}), noTags, 0, false},
		{"sg unset has_none", fieldRule("profile.static_groups", "has_none", []string{"s2"}), noTags, 0, true},
		{"sg empty is_not_set", fieldRule("profile.static_groups", "is_not_set", nil), emptySG, 0, true},
		{"sg empty has_all", fieldRule("profile.static_groups", "has_all", []string{"s2"}), emptySG, 0, false},
		// multi_select: exact option ids, undeclared ones ignored
		{"ms has_any", fieldRule("custom.interests", "has_any", []string{"rust", "go"}), multi, 0, true},
		{"ms has_any none", fieldRule("custom.interests", "has_any", []string{"rust"}), multi, 0, false},
		{"ms has_all", fieldRule("custom.interests", "has_all", []string{"ai", "go"}), multi, 0, true},
		{"ms has_all missing", fieldRule("custom.interests", "has_all", []string{"ai", "rust"}), multi, 0, false},
		{"ms has_none", fieldRule("custom.interests", "has_none", []string{"rust"}), multi, 0, true},
		{"ms has_none hit", fieldRule("custom.interests", "has_none", []string{"ai"}), multi, 0, false},
		{"ms is_set", fieldRule("custom.interests", "is_set", nil), multi, 0, true},
		{"form ms has_any", fieldRule("form.goals", "has_any", []string{"learn"}), multi, 0, true},
		{"form ms has_all", fieldRule("form.goals", "has_all", []string{"learn", "network"}), multi, 0, false},
		{"form ms has_none", fieldRule("form.goals", "has_none", []string{"network"}), multi, 0, true},
		{"ms only undeclared is_set", fieldRule("custom.interests", "is_set", nil), onlyUndeclared, 0, false},
		{"ms only undeclared is_not_set", fieldRule("custom.interests", "is_not_set", nil), onlyUndeclared, 0, true},
		{"ms only undeclared has_any", fieldRule("custom.interests", "has_any", []string{"ai"}), onlyUndeclared, 0, false},
		{"ms only undeclared has_none", fieldRule("custom.interests", "has_none", []string{"ai"}), onlyUndeclared, 0, true},
		{"ms empty is_set", fieldRule("form.goals", "is_set", nil), onlyUndeclared, 0, false},
		{"ms empty has_none", fieldRule("form.goals", "has_none", []string{"learn"}), onlyUndeclared, 0, true},
		{"ms wrong type is_set", fieldRule("custom.interests", "is_set", nil), multiWrongType, 0, false},
		{"ms wrong type has_any", fieldRule("custom.interests", "has_any", []string{"ai"}), multiWrongType, 0, false},
		{"ms wrong type has_none", fieldRule("custom.interests", "has_none", []string{"ai"}), multiWrongType, 0, true},
		{"form ms wrong type is_not_set", fieldRule("form.goals", "is_not_set", nil), multiWrongType, 0, true},
		{"ms unset has_all", fieldRule("custom.interests", "has_all", []string{"ai"}), noTags, 0, false},
		{"ms unset has_none", fieldRule("custom.interests", "has_none", []string{"ai"}), noTags, 0, true},
	})
}

func TestEvalNumber(t *testing.T) {
	var ec []evalCase
	for _, f := range []struct{ field, src string }{{"custom.seats", "custom"}, {"form.age", "form"}} {
		id := f.field[len(f.src)+1:]
		with := func(raw string) *tMember {
			if f.src == "custom" {
				return &tMember{custom: raws(id, raw)}
			}
			return &tMember{form: raws(id, raw)}
		}
		m12 := with(`12`)
		frac := with(`12.5`)
		neg := with(`-3`)
		str := with(`"12"`)
		unset := &tMember{}
		fc := []evalCase{
			{"eq", fieldRule(f.field, "eq", 12), m12, 0, true},
			{"eq float", fieldRule(f.field, "eq", 12.0), m12, 0, true},
			{"eq exp", `{"field":"` + f.field + `","op":"eq","value":1.2e1}`, m12, 0, true},
			{"eq other", fieldRule(f.field, "eq", 13), m12, 0, false},
			{"neq", fieldRule(f.field, "neq", 13), m12, 0, true},
			{"neq same", fieldRule(f.field, "neq", 12), m12, 0, false},
			{"lt", fieldRule(f.field, "lt", 13), m12, 0, true},
			{"lt equal", fieldRule(f.field, "lt", 12), m12, 0, false},
			{"lte equal", fieldRule(f.field, "lte", 12), m12, 0, true},
			{"lte below", fieldRule(f.field, "lte", 11.99), m12, 0, false},
			{"gt", fieldRule(f.field, "gt", 11), m12, 0, true},
			{"gt equal", fieldRule(f.field, "gt", 12), m12, 0, false},
			{"gte equal", fieldRule(f.field, "gte", 12), m12, 0, true},
			{"gte above", fieldRule(f.field, "gte", 12.01), m12, 0, false},
			{"between inside", fieldRule(f.field, "between", []float64{10, 20}), m12, 0, true},
			{"between lo inclusive", fieldRule(f.field, "between", []float64{12, 20}), m12, 0, true},
			{"between hi inclusive", fieldRule(f.field, "between", []float64{1, 12}), m12, 0, true},
			{"between point", fieldRule(f.field, "between", []float64{12, 12}), m12, 0, true},
			{"between outside", fieldRule(f.field, "between", []float64{13, 20}), m12, 0, false},
			{"fraction gt", fieldRule(f.field, "gt", 12), frac, 0, true},
			{"fraction between", fieldRule(f.field, "between", []float64{12, 12.5}), frac, 0, true},
			{"negative lt 0", fieldRule(f.field, "lt", 0), neg, 0, true},
			{"is_set", fieldRule(f.field, "is_set", nil), m12, 0, true},
			{"is_not_set", fieldRule(f.field, "is_not_set", nil), m12, 0, false},
		}
		for _, op := range []string{"eq", "lt", "lte", "gt", "gte"} {
			fc = append(fc,
				evalCase{"unset " + op, fieldRule(f.field, op, 12), unset, 0, false},
				evalCase{"string " + op, fieldRule(f.field, op, 12), str, 0, false})
		}
		fc = append(fc,
			evalCase{"unset neq", fieldRule(f.field, "neq", 12), unset, 0, true},
			evalCase{"string neq", fieldRule(f.field, "neq", 12), str, 0, true},
			evalCase{"unset between", fieldRule(f.field, "between", []float64{0, 100}), unset, 0, false},
			evalCase{"string between", fieldRule(f.field, "between", []float64{0, 100}), str, 0, false},
			evalCase{"unset is_set", fieldRule(f.field, "is_set", nil), unset, 0, false},
			evalCase{"string is_set", fieldRule(f.field, "is_set", nil), str, 0, false},
			evalCase{"string is_not_set", fieldRule(f.field, "is_not_set", nil), str, 0, true},
		)
		for i := range fc {
			fc[i].name = f.field + "/" + fc[i].name
		}
		ec = append(ec, fc...)
	}
	runEvalCases(t, ec)
}

// dateField sets a date field of a member.
type dateField struct {
	field string
	set   func(m *tMember, t Millis)
}

var dateFields = []dateField{
	{"profile.invited_at", func(m *tMember, t Millis) { m.p.InvitedAt = &t }},
	{"profile.registered_at", func(m *tMember, t Millis) { m.p.RegisteredAt = &t }},
	{"profile.last_activity_at", func(m *tMember, t Millis) { m.p.LastActivityAt = &t }},
	{"custom.renewal", func(m *tMember, t Millis) { m.custom = raws("renewal", jsonOf(FormatMillis(t))) }},
	{"form.joined", func(m *tMember, t Millis) { m.form = raws("joined", fmt.Sprint(t)) }}, // epoch millis
}

func TestEvalDate(t *testing.T) {
	now := evalNow
	T := ms("2026-06-01T00:00:00Z")
	type dc struct {
		name string
		at   *Millis // nil: unset
		op   string
		val  any
		want bool
	}
	at := func(m Millis) *Millis { return &m }
	cases := []dc{
		{"before earlier", at(T - 1), "before", FormatMillis(T), true},
		{"before equal", at(T), "before", FormatMillis(T), false},
		{"before later", at(T + 1), "before", FormatMillis(T), false},
		{"before offset", at(T - 1), "before", "2026-06-01T02:00:00+02:00", true},
		{"before offset equal", at(T), "before", "2026-06-01T02:00:00+02:00", false},
		{"before epoch ms", at(T - 1), "before", T, true},
		{"after later", at(T + 1), "after", FormatMillis(T), true},
		{"after equal", at(T), "after", FormatMillis(T), false},
		{"after earlier", at(T - 1), "after", FormatMillis(T), false},
		{"after offset", at(T + 1), "after", "2026-05-31T20:00:00-04:00", true},
		{"between from inclusive", at(T), "between", []any{FormatMillis(T), FormatMillis(T + msDay)}, true},
		{"between to inclusive", at(T + msDay), "between", []any{FormatMillis(T), FormatMillis(T + msDay)}, true},
		{"between inside", at(T + msHour), "between", []any{FormatMillis(T), T + msDay}, true},
		{"between before", at(T - 1), "between", []any{FormatMillis(T), FormatMillis(T + msDay)}, false},
		{"between after", at(T + msDay + 1), "between", []any{FormatMillis(T), FormatMillis(T + msDay)}, false},
		{"between point", at(T), "between", []any{T, T}, true},

		{"within_last days exact boundary", at(now - 30*msDay), "within_last", map[string]int{"days": 30}, true},
		{"within_last days just outside", at(now - 30*msDay - 1), "within_last", map[string]int{"days": 30}, false},
		{"within_last days inside", at(now - msDay), "within_last", map[string]int{"days": 30}, true},
		{"within_last now", at(now), "within_last", map[string]int{"days": 30}, true},
		{"within_last future", at(now + 1), "within_last", map[string]int{"days": 30}, false},
		{"within_last far future", at(now + 10*msDay), "within_last", map[string]int{"days": 30}, false},
		{"within_last hours exact boundary", at(now - 5*msHour), "within_last", map[string]int{"hours": 5}, true},
		{"within_last hours just outside", at(now - 5*msHour - 1), "within_last", map[string]int{"hours": 5}, false},
		{"within_last 0 days now", at(now), "within_last", map[string]int{"days": 0}, true},
		{"within_last 0 days past", at(now - 1), "within_last", map[string]int{"days": 0}, false},

		{"more_than_ago days exact boundary", at(now - 30*msDay), "more_than_ago", map[string]int{"days": 30}, false},
		{"more_than_ago days just past", at(now - 30*msDay - 1), "more_than_ago", map[string]int{"days": 30}, true},
		{"more_than_ago days recent", at(now - msDay), "more_than_ago", map[string]int{"days": 30}, false},
		{"more_than_ago future", at(now + msDay), "more_than_ago", map[string]int{"days": 30}, false},
		{"more_than_ago hours exact boundary", at(now - 2*msHour), "more_than_ago", map[string]int{"hours": 2}, false},
		{"more_than_ago hours just past", at(now - 2*msHour - 1), "more_than_ago", map[string]int{"hours": 2}, true},
		{"more_than_ago 0 hours now", at(now), "more_than_ago", map[string]int{"hours": 0}, false},
		{"more_than_ago 0 hours past", at(now - 1), "more_than_ago", map[string]int{"hours": 0}, true},

		{"is_set", at(T), "is_set", nil, true},
		{"is_not_set", at(T), "is_not_set", nil, false},
		{"unset is_set", nil, "is_set", nil, false},
		{"unset is_not_set", nil, "is_not_set", nil, true},
		{"unset before", nil, "before", FormatMillis(T), false},
		{"unset after", nil, "after", FormatMillis(T), false},
		{"unset between", nil, "between", []any{0, FormatMillis(T)}, false},
		{"unset within_last", nil, "within_last", map[string]int{"days": 100000}, false},
		{"unset more_than_ago", nil, "more_than_ago", map[string]int{"days": 0}, false},
	}
	var ec []evalCase
	for _, f := range dateFields {
		for _, c := range cases {
			m := &tMember{}
			if c.at != nil {
				f.set(m, *c.at)
			}
			ec = append(ec, evalCase{name: f.field + "/" + c.name, rule: fieldRule(f.field, c.op, c.val), m: m, now: now, want: c.want})
		}
	}
	runEvalCases(t, ec)
}

func TestEvalCustomDateNotADate(t *testing.T) {
	for _, raw := range []string{`"tomorrow"`, `"2026-01-01"`, `true`, `1.5`, `["2026-01-01T00:00:00Z"]`} {
		m := &tMember{custom: raws("renewal", raw), form: raws("joined", raw)}
		runEvalCases(t, []evalCase{
			{"custom before " + raw, fieldRule("custom.renewal", "before", "2100-01-01T00:00:00Z"), m, 0, false},
			{"custom is_set " + raw, fieldRule("custom.renewal", "is_set", nil), m, 0, false},
			{"form more_than_ago " + raw, fieldRule("form.joined", "more_than_ago", map[string]int{"days": 0}), m, 0, false},
			{"form is_not_set " + raw, fieldRule("form.joined", "is_not_set", nil), m, 0, true},
		})
	}
}

func TestEvalEffectiveLastActivity(t *testing.T) {
	now := evalNow
	rule := fieldRule("profile.last_activity_at", "within_last", map[string]int{"days": 7})
	before := func(t Millis) string {
		return fieldRule("profile.last_activity_at", "before", FormatMillis(t))
	}
	old, recent := now-30*msDay, now-msDay
	runEvalCases(t, []evalCase{
		{"profile only old", rule, &tMember{p: Profile{LastActivityAt: mp(old)}}, 0, false},
		{"profile only recent", rule, &tMember{p: Profile{LastActivityAt: mp(recent)}}, 0, true},
		{"activity only recent", rule, &tMember{acts: []Activity{{Type: "joined_spot", TS: recent}}}, 0, true},
		{"activity only old", rule, &tMember{acts: []Activity{{Type: "joined_spot", TS: old}}}, 0, false},
		{"profile old, activity recent", rule, &tMember{p: Profile{LastActivityAt: mp(old)},
			acts: []Activity{{Type: "opened_link", Resource: "l", TS: recent}}}, 0, true},
		{"profile recent, activity old", rule, &tMember{p: Profile{LastActivityAt: mp(recent)},
			acts: []Activity{{Type: "opened_link", Resource: "l", TS: old}}}, 0, true},
		{"max is used by before", before(recent), &tMember{p: Profile{LastActivityAt: mp(old)},
			acts: []Activity{{Type: "opened_link", Resource: "l", TS: recent}}}, 0, false},
		{"max is used by before (2)", before(recent + 1), &tMember{p: Profile{LastActivityAt: mp(old)},
			acts: []Activity{{Type: "opened_link", Resource: "l", TS: recent}}}, 0, true},
		{"activity makes it set", fieldRule("profile.last_activity_at", "is_set", nil),
			&tMember{acts: []Activity{{Type: "left_spot", TS: old}}}, 0, true},
		{"nothing is unset", fieldRule("profile.last_activity_at", "is_not_set", nil), &tMember{}, 0, true},
	})
}

func TestEvalBoolean(t *testing.T) {
	var ec []evalCase
	for _, field := range []string{"custom.beta", "form.consent"} {
		with := func(raw string) *tMember {
			if field == "custom.beta" {
				return &tMember{custom: raws("beta", raw)}
			}
			return &tMember{form: raws("consent", raw)}
		}
		yes, no, str, unset := with(`true`), with(`false`), with(`"true"`), &tMember{}
		ec = append(ec,
			evalCase{field + "/is_true true", fieldRule(field, "is_true", nil), yes, 0, true},
			evalCase{field + "/is_false true", fieldRule(field, "is_false", nil), yes, 0, false},
			evalCase{field + "/is_true false", fieldRule(field, "is_true", nil), no, 0, false},
			evalCase{field + "/is_false false", fieldRule(field, "is_false", nil), no, 0, true},
			evalCase{field + "/is_set false", fieldRule(field, "is_set", nil), no, 0, true},
			evalCase{field + "/is_true unset", fieldRule(field, "is_true", nil), unset, 0, false},
			evalCase{field + "/is_false unset", fieldRule(field, "is_false", nil), unset, 0, false},
			evalCase{field + "/is_not_set unset", fieldRule(field, "is_not_set", nil), unset, 0, true},
			evalCase{field + "/is_true string", fieldRule(field, "is_true", nil), str, 0, false},
			evalCase{field + "/is_false string", fieldRule(field, "is_false", nil), str, 0, false},
			evalCase{field + "/is_set string", fieldRule(field, "is_set", nil), str, 0, false},
			evalCase{field + "/explicit null value", `{"field":"` + field + `","op":"is_true","value":null}`, yes, 0, true},
		)
	}
	runEvalCases(t, ec)
}

func TestEvalSingleSelect(t *testing.T) {
	pro := &tMember{custom: raws("plan", `"pro"`), form: raws("company_size", `"11-50"`)}
	undeclared := &tMember{custom: raws("plan", `"enterprise"`), form: raws("company_size", `"51-200"`)}
	wrongCase := &tMember{custom: raws("plan", `"PRO"`)}
	wrongType := &tMember{custom: raws("plan", `["pro"]`), form: raws("company_size", `11`)}
	unset := &tMember{}
	runEvalCases(t, []evalCase{
		{"in", fieldRule("custom.plan", "in", []string{"pro"}), pro, 0, true},
		{"in several", fieldRule("custom.plan", "in", []string{"free", "pro"}), pro, 0, true},
		{"in other", fieldRule("custom.plan", "in", []string{"free"}), pro, 0, false},
		{"not_in", fieldRule("custom.plan", "not_in", []string{"free"}), pro, 0, true},
		{"not_in hit", fieldRule("custom.plan", "not_in", []string{"pro"}), pro, 0, false},
		{"is_set", fieldRule("custom.plan", "is_set", nil), pro, 0, true},
		{"form in", fieldRule("form.company_size", "in", []string{"11-50"}), pro, 0, true},
		{"form not_in", fieldRule("form.company_size", "not_in", []string{"11-50"}), pro, 0, false},
		{"unset in", fieldRule("custom.plan", "in", []string{"free", "pro"}), unset, 0, false},
		{"unset not_in", fieldRule("custom.plan", "not_in", []string{"free"}), unset, 0, true},
		{"unset is_not_set", fieldRule("custom.plan", "is_not_set", nil), unset, 0, true},
		{"undeclared option is unset: in", fieldRule("custom.plan", "in", []string{"free", "pro"}), undeclared, 0, false},
		{"undeclared option is unset: not_in", fieldRule("custom.plan", "not_in", []string{"pro"}), undeclared, 0, true},
		{"undeclared option is unset: is_set", fieldRule("custom.plan", "is_set", nil), undeclared, 0, false},
		{"form undeclared option is unset", fieldRule("form.company_size", "is_not_set", nil), undeclared, 0, true},
		{"option ids are exact", fieldRule("custom.plan", "in", []string{"pro"}), wrongCase, 0, false},
		{"wrong type is unset", fieldRule("custom.plan", "is_set", nil), wrongType, 0, false},
		{"wrong type not_in", fieldRule("custom.plan", "not_in", []string{"pro"}), wrongType, 0, true},
		{"form wrong type in", fieldRule("form.company_size", "in", []string{"11-50"}), wrongType, 0, false},
	})
}

func TestEvalActivityTriggers(t *testing.T) {
	now := evalNow
	acts := []Activity{
		{Type: "attended_live", Resource: "live-42", TS: now - msDay},
		{Type: "attended_live", Resource: "live-43", TS: now - 40*msDay},
		{Type: "attended_live", Resource: "live-42", TS: now - 30*msDay}, // exactly on the 30-day edge
		{Type: "opened_link", Resource: "doc", TS: now - 2*msHour},
		{Type: "joined_spot", TS: now - 5*msDay},
	}
	m := &tMember{acts: acts}
	none := &tMember{}
	a := func(s string) string { return s }
	runEvalCases(t, []evalCase{
		{"default gte 1", a(`{"activity":"attended_live"}`), m, 0, true},
		{"default gte 1, none of that type", a(`{"activity":"completed_course"}`), m, 0, false},
		{"no activities default", a(`{"activity":"attended_live"}`), none, 0, false},
		{"count eq 0 no activities", a(`{"activity":"attended_live","count":{"eq":0}}`), none, 0, true},
		{"count eq 0 no such type", a(`{"activity":"completed_course","count":{"eq":0}}`), m, 0, true},
		{"count eq 0 has some", a(`{"activity":"attended_live","count":{"eq":0}}`), m, 0, false},
		{"count lte 0 no activities", a(`{"activity":"attended_live","count":{"lte":0}}`), none, 0, true},
		{"count lte 5 no activities", a(`{"activity":"attended_live","count":{"lte":5}}`), none, 0, true},
		{"count gte 0 no activities", a(`{"activity":"attended_live","count":{"gte":0}}`), none, 0, true},
		{"count eq 3", a(`{"activity":"attended_live","count":{"eq":3}}`), m, 0, true},
		{"count eq 2", a(`{"activity":"attended_live","count":{"eq":2}}`), m, 0, false},
		{"count gte 3", a(`{"activity":"attended_live","count":{"gte":3}}`), m, 0, true},
		{"count gte 4", a(`{"activity":"attended_live","count":{"gte":4}}`), m, 0, false},
		{"count lte 3", a(`{"activity":"attended_live","count":{"lte":3}}`), m, 0, true},
		{"count lte 2", a(`{"activity":"attended_live","count":{"lte":2}}`), m, 0, false},
		{"resources hit", a(`{"activity":"attended_live","resources":["live-43"]}`), m, 0, true},
		{"resources miss", a(`{"activity":"attended_live","resources":["live-99"]}`), m, 0, false},
		{"resources count", a(`{"activity":"attended_live","resources":["live-42"],"count":{"eq":2}}`), m, 0, true},
		{"resources several", a(`{"activity":"attended_live","resources":["live-42","live-43","live-42"],"count":{"eq":3}}`), m, 0, true},
		{"resources are exact", a(`{"activity":"attended_live","resources":["LIVE-42"]}`), m, 0, false},
		{"resources eq 0", a(`{"activity":"attended_live","resources":["live-99"],"count":{"eq":0}}`), m, 0, true},
		{"when within_last inclusive edge", a(`{"activity":"attended_live","when":{"within_last":{"days":30}},"count":{"eq":2}}`), m, 0, true},
		{"when within_last 29 days", a(`{"activity":"attended_live","when":{"within_last":{"days":29}},"count":{"eq":1}}`), m, 0, true},
		{"when within_last hours", a(`{"activity":"opened_link","when":{"within_last":{"hours":2}}}`), m, 0, true},
		{"when within_last hours too short", a(`{"activity":"opened_link","when":{"within_last":{"hours":1}}}`), m, 0, false},
		{"when more_than_ago", a(`{"activity":"attended_live","when":{"more_than_ago":{"days":30}},"count":{"eq":1}}`), m, 0, true},
		{"when more_than_ago none", a(`{"activity":"opened_link","when":{"more_than_ago":{"hours":2}}}`), m, 0, false},
		{"when more_than_ago eq 0", a(`{"activity":"opened_link","when":{"more_than_ago":{"hours":2}},"count":{"eq":0}}`), m, 0, true},
		{"when before", a(`{"activity":"attended_live","when":{"before":"` + FormatMillis(now-30*msDay) + `"},"count":{"eq":1}}`), m, 0, true},
		{"when after", a(`{"activity":"attended_live","when":{"after":"` + FormatMillis(now-30*msDay) + `"},"count":{"eq":1}}`), m, 0, true},
		{"when between inclusive", a(`{"activity":"attended_live","when":{"between":["` + FormatMillis(now-40*msDay) + `","` + FormatMillis(now-30*msDay) + `"]},"count":{"eq":2}}`), m, 0, true},
		{"when and resources", a(`{"activity":"attended_live","resources":["live-43"],"when":{"within_last":{"days":30}}}`), m, 0, false},
		{"resource-less type", a(`{"activity":"joined_spot","when":{"within_last":{"days":7}}}`), m, 0, true},
		{"null resources/when/count are defaults", a(`{"activity":"joined_spot","resources":null,"when":null,"count":null}`), m, 0, true},
		{"window slides", a(`{"activity":"opened_link","when":{"within_last":{"hours":2}}}`), m, now + 1, false},
		{"future activity not within_last", a(`{"activity":"opened_link","when":{"within_last":{"days":1}}}`), m, now - 3*msHour, false},
	})
}

func TestEvalGroupTriggers(t *testing.T) {
	inStatic := &tMember{p: Profile{StaticGroups: []string{"beta-testers"}}}
	inSmart := &tMember{groups: map[string]bool{"vips": true}}
	// Membership of a smart group comes from InSmartGroup, not from the
	// rule of the group evaluated here: a member with the vip tag who is
	// not in vips (blacklisted, say) does not satisfy {"group":"vips"}.
	taggedNotIn := &tMember{p: Profile{Tags: []string{"vip"}}}
	runEvalCases(t, []evalCase{
		{"static in", `{"group":"beta-testers"}`, inStatic, 0, true},
		{"static other", `{"group":"s2"}`, inStatic, 0, false},
		{"static none", `{"group":"beta-testers"}`, &tMember{}, 0, false},
		{"static not from InSmartGroup", `{"group":"beta-testers"}`, &tMember{groups: map[string]bool{"beta-testers": true}}, 0, false},
		{"smart in", `{"group":"vips"}`, inSmart, 0, true},
		{"smart not in", `{"group":"vips"}`, &tMember{}, 0, false},
		{"smart not by static_groups", `{"group":"vips"}`, &tMember{p: Profile{StaticGroups: []string{"vips"}}}, 0, false},
		{"smart uses membership", `{"group":"vips"}`, taggedNotIn, 0, false},
		{"not smart", `{"not":{"group":"vips"}}`, taggedNotIn, 0, true},
	})
}

func TestEvalBooleanStructure(t *testing.T) {
	tr := `{"all":[]}`
	fa := `{"any":[]}`
	m := &tMember{p: Profile{Tags: []string{"vip"}}}
	vip := `{"field":"profile.tags","op":"has_any","value":["vip"]}`
	novip := `{"field":"profile.tags","op":"has_none","value":["vip"]}`
	runEvalCases(t, []evalCase{
		{"all of zero", tr, nil, 0, true},
		{"any of zero", fa, nil, 0, false},
		{"not all of zero", `{"not":` + tr + `}`, nil, 0, false},
		{"not any of zero", `{"not":` + fa + `}`, nil, 0, true},
		{"not not", `{"not":{"not":` + vip + `}}`, m, 0, true},
		{"all true true", `{"all":[` + vip + `,` + tr + `]}`, m, 0, true},
		{"all true false", `{"all":[` + vip + `,` + novip + `]}`, m, 0, false},
		{"all false first", `{"all":[` + novip + `,` + vip + `]}`, m, 0, false},
		{"any false true", `{"any":[` + novip + `,` + vip + `]}`, m, 0, true},
		{"any false false", `{"any":[` + novip + `,` + fa + `]}`, m, 0, false},
		{"two-level UI form", `{"any":[{"all":[` + novip + `]},{"all":[` + vip + `,` + tr + `]}]}`, m, 0, true},
		{"all of zero nested in any", `{"any":[` + fa + `,` + tr + `]}`, nil, 0, true},
		{"all containing any of zero", `{"all":[` + tr + `,` + fa + `]}`, nil, 0, false},
	})
}

// TestEvalNegativeIsNotOfPositive checks that every negative op is
// exactly NOT of its positive op, for a spread of members.
func TestEvalNegativeIsNotOfPositive(t *testing.T) {
	d := testDefs(t)
	members := []*tMember{
		{},
		{p: Profile{FirstName: sp("École"), Tags: []string{"VIP"}, StaticGroups: []string{"s2"}, UTM: map[string]string{"source": "google"}},
			custom: raws("nick", `"\u212Aelvin"`, "seats", `12`, "plan", `"pro"`, "interests", `["ai","zzz"]`),
			form:   raws("bio", `"hi"`, "company_size", `"nope"`, "age", `"x"`)},
		{p: Profile{FirstName: sp(""), Tags: []string{}}, custom: raws("seats", `"12"`, "plan", `5`, "interests", `["zzz"]`)},
	}
	pairs := []struct {
		field, pos, neg string
		value           any
	}{
		{"profile.first_name", "eq", "neq", "école"},
		{"profile.first_name", "in", "not_in", []string{"ÉCOLE", "x"}},
		{"profile.first_name", "contains", "not_contains", "co"},
		{"profile.utm.source", "eq", "neq", "GOOGLE"},
		{"custom.nick", "eq", "neq", "kelvin"},
		{"custom.nick", "contains", "not_contains", "K"},
		{"form.bio", "in", "not_in", []string{"HI"}},
		{"profile.status", "in", "not_in", []string{"accepted"}},
		{"profile.tags", "has_any", "has_none", []string{"vip", "x"}},
		{"profile.static_groups", "has_any", "has_none", []string{"s2"}},
		{"custom.interests", "has_any", "has_none", []string{"ai"}},
		{"form.goals", "has_any", "has_none", []string{"learn"}},
		{"custom.seats", "eq", "neq", 12},
		{"form.age", "eq", "neq", 1},
		{"custom.plan", "in", "not_in", []string{"pro"}},
		{"form.company_size", "in", "not_in", []string{"1-10"}},
	}
	for _, p := range pairs {
		pos := compile(t, d, fieldRule(p.field, p.pos, p.value))
		neg := compile(t, d, fieldRule(p.field, p.neg, p.value))
		set := compile(t, d, fieldRule(p.field, "is_set", nil))
		notSet := compile(t, d, fieldRule(p.field, "is_not_set", nil))
		for i, m := range members {
			pv, err := Eval(pos, m, evalNow)
			require.NoError(t, err)
			nv, err := Eval(neg, m, evalNow)
			require.NoError(t, err)
			require.Equal(t, !pv, nv, "%s %s/%s member %d", p.field, p.pos, p.neg, i)
			sv, _ := Eval(set, m, evalNow)
			nsv, _ := Eval(notSet, m, evalNow)
			require.Equal(t, !sv, nsv, "%s is_set/is_not_set member %d", p.field, i)
			if !sv {
				require.False(t, pv, "%s %s on unset must be false (member %d)", p.field, p.pos, i)
				require.True(t, nv, "%s %s on unset must be true (member %d)", p.field, p.neg, i)
			}
		}
	}
}

func TestEvalExplainTree(t *testing.T) {
	d := testDefs(t)
	r := compile(t, d, `{"all":[{"field":"profile.tags","op":"has_any","value":["vip"]},{"activity":"attended_live","count":{"gte":2}},{"not":{"group":"beta-testers"}},{"any":[]}]}`)
	m := &tMember{p: Profile{Tags: []string{"vip"}}, acts: []Activity{{Type: "attended_live", Resource: "x", TS: 1}}}
	v, ex, err := Explain(r, m, evalNow)
	require.NoError(t, err)
	require.False(t, v)
	b, err := json.Marshal(ex)
	require.NoError(t, err)
	require.JSONEq(t, `{"value":false,"all":[
		{"field":"profile.tags","op":"has_any","operand":["vip"],"value":true},
		{"activity":"attended_live","count":{"gte":2},"matched_count":1,"value":false},
		{"not":{"group":"beta-testers","value":false},"value":true},
		{"any":[],"value":false}]}`, string(b))
}

// TestEvalDependencies checks the dependency keys and references a
// compiled rule reports (they route incremental maintenance).
func TestEvalDependencies(t *testing.T) {
	d := testDefs(t)
	r := compile(t, d, `{"all":[
		{"field":"profile.tags","op":"has_any","value":["VIP","vip","new"]},
		{"field":"profile.utm.source","op":"eq","value":"x"},
		{"field":"custom.plan","op":"in","value":["pro","free","pro"]},
		{"field":"form.goals","op":"has_all","value":["learn"]},
		{"field":"profile.static_groups","op":"has_any","value":["s2"]},
		{"activity":"attended_live","when":{"within_last":{"days":1}}},
		{"group":"vips"},{"group":"beta-testers"}]}`)
	require.Equal(t, []string{"a.attended_live", "c.plan", "f.goals", "g.vips", "p.static_groups", "p.tags", "p.utm"}, r.Deps)
	require.True(t, r.TimeDependent)
	require.Equal(t, []string{"VIP", "new", "vip"}, r.Tags)
	require.Equal(t, []string{"plan"}, r.Properties)
	require.Equal(t, []string{"goals"}, r.Questions)
	require.Equal(t, map[string][]string{"property:plan": {"free", "pro"}, "question:goals": {"learn"}}, r.Options)
	require.Equal(t, []string{"beta-testers", "vips"}, r.Groups)
	require.Equal(t, []string{"s2"}, r.StaticGroups)
	require.True(t, r.ReferencesGroup("s2"))
	require.True(t, r.ReferencesGroup("vips"))
	require.False(t, r.ReferencesGroup("other"))
	require.Equal(t, 9, r.Nodes)

	r2 := compile(t, d, `{"field":"profile.registered_at","op":"before","value":"2026-01-01T00:00:00Z"}`)
	require.False(t, r2.TimeDependent)
}

// TestEvalFlipInstants checks the instants at which relative triggers can
// change value (the timers of the engine): exactly when test() flips.
func TestEvalFlipInstants(t *testing.T) {
	d := testDefs(t)
	now := evalNow
	for _, c := range []struct {
		rule string
		t    Millis
	}{
		{fieldRule("profile.registered_at", "within_last", map[string]int{"days": 2}), now - msDay},
		{fieldRule("profile.registered_at", "within_last", map[string]int{"hours": 3}), now + msHour},
		{fieldRule("profile.registered_at", "more_than_ago", map[string]int{"days": 2}), now - msDay},
		{fieldRule("profile.registered_at", "more_than_ago", map[string]int{"hours": 1}), now + msHour},
	} {
		r := compile(t, d, c.rule)
		m := &tMember{p: Profile{RegisteredAt: mp(c.t)}}
		inst, err := FlipInstants(r.Root, m, now, nil)
		require.NoError(t, err)
		sort.Slice(inst, func(i, j int) bool { return inst[i] < inst[j] })
		// Every listed instant is after now and is one at which the value
		// differs from the value one millisecond earlier.
		prev, _ := Eval(r, m, now)
		for _, x := range inst {
			require.Greater(t, x, now)
			before, _ := Eval(r, m, x-1)
			at, _ := Eval(r, m, x)
			require.NotEqual(t, before, at, "rule %s flips at %d", c.rule, x)
		}
		// And no flip between now and the first instant.
		end := now + 4*msDay
		if len(inst) > 0 {
			end = inst[0] - 1
		}
		endV, _ := Eval(r, m, end)
		require.Equal(t, prev, endV, "rule %s must not flip before its first timer", c.rule)
	}
}

// checkNextFlip checks NextFlip (the engine's timers) against FlipInstants
// and Eval: the rule keeps its value until the instant NextFlip returns,
// which is one of the instants FlipInstants lists; for a rule of one
// trigger, its value changes there (no timer fires for nothing).
func checkNextFlip(t testing.TB, r *Rule, m MemberView, after Millis, single bool) {
	inst, err := FlipInstants(r.Root, m, after, nil)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(inst)
	inst = slices.Compact(inst)
	v0, _ := Eval(r, m, after)
	first, changes := Millis(0), false
	for _, x := range inst {
		if v, _ := Eval(r, m, x); v != v0 {
			first, changes = x, true
			break
		}
	}
	at1, ok1, err1 := NextFlip(r.Root, m, after)
	at2, ok2, err2 := r.NextFlip(m, after)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	for _, got := range []struct {
		at Millis
		ok bool
	}{{at1, ok1}, {at2, ok2}} {
		at, ok := got.at, got.ok
		if ok && !slices.Contains(inst, at) {
			t.Fatalf("rule %s after %d: next flip %d is not a flip instant %v", r.Canonical, after, at, inst)
		}
		if changes && (!ok || at > first) {
			t.Fatalf("rule %s after %d: next flip %d %v, but the value changes at %d", r.Canonical, after, at, ok, first)
		}
		if single && (ok != changes || at != first) {
			t.Fatalf("rule %s after %d: next flip %d %v, value changes at %d %v", r.Canonical, after, at, ok, first, changes)
		}
	}
}

// TestNextFlip checks NextFlip on random members with many activities,
// for activity triggers with counts and resources and for date triggers.
func TestNextFlip(t *testing.T) {
	d := testDefs(t)
	rules := []struct {
		src    string
		single bool
	}{
		{`{"activity":"attended_live","when":{"within_last":{"hours":30}}}`, true},
		{`{"activity":"attended_live","resources":["live-1","live-3"],"when":{"within_last":{"days":2}},"count":{"gte":2}}`, true},
		{`{"activity":"attended_live","when":{"within_last":{"hours":20}},"count":{"lte":3}}`, true},
		{`{"activity":"attended_live","when":{"within_last":{"hours":50}},"count":{"eq":4}}`, true},
		{`{"activity":"opened_link","when":{"more_than_ago":{"hours":5}},"count":{"gte":3}}`, true},
		{`{"not":{"field":"profile.last_activity_at","op":"within_last","value":{"hours":12}}}`, true},
		{`{"any":[{"activity":"opened_link","when":{"within_last":{"hours":1}}},{"field":"profile.registered_at","op":"more_than_ago","value":{"days":3}}]}`, false},
		{`{"all":[{"activity":"attended_live","when":{"within_last":{"hours":40}},"count":{"gte":2}},{"activity":"opened_link","when":{"within_last":{"hours":10}}}]}`, false},
	}
	r := rand.New(rand.NewSource(7))
	for i := 0; i < 300; i++ {
		m := &tMember{p: Profile{RegisteredAt: mp(evalNow - Millis(r.Intn(10))*msDay)}}
		for j := r.Intn(40); j > 0; j-- {
			typ := []string{"attended_live", "opened_link"}[r.Intn(2)]
			ts := evalNow + Millis(r.Intn(5*24)-4*24)*msHour + Millis(r.Intn(1000))
			if r.Intn(4) == 0 && len(m.acts) > 0 { // same instant as another
				ts = m.acts[r.Intn(len(m.acts))].TS
			}
			m.acts = append(m.acts, Activity{Type: typ, Resource: fmt.Sprintf("live-%d", r.Intn(4)), TS: ts})
		}
		for _, c := range rules {
			ru := compile(t, d, c.src)
			for _, after := range []Millis{evalNow - 3*msDay, evalNow, evalNow + Millis(r.Intn(2*24))*msHour} {
				checkNextFlip(t, ru, m, after, c.single)
			}
		}
	}
}
