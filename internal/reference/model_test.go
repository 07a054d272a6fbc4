package reference

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/smartgroups/smartgroups/engine"
)

const (
	day  = int64(24 * 3600 * 1000)
	hour = int64(3600 * 1000)
	// now is 2026-11-20T09:00:00Z.
	now = int64(1795165200000)
)

// in is one input record: topic, key and raw JSON value ("" is a null value).
type in struct {
	topic, key, value string
}

func run(t *testing.T, m *Model, recs []in) {
	t.Helper()
	for i, r := range recs {
		rec := engine.Record{Kind: engine.Kind(r.topic), Topic: r.topic, Offset: int64(i), Key: []byte(r.key)}
		if r.value != "" {
			rec.Value = []byte(r.value)
		}
		m.Apply(rec)
	}
}

func group(spot, id, rule string) in {
	return in{"definitions", spot + "/group/" + id,
		fmt.Sprintf(`{"kind":"group","spot":%q,"id":%q,"type":"smart","name":"G %s","rule":%s}`, spot, id, id, rule)}
}

func static(spot, id string) in {
	return in{"definitions", spot + "/group/" + id,
		fmt.Sprintf(`{"kind":"group","spot":%q,"id":%q,"type":"static","name":"S %s"}`, spot, id, id)}
}

func schema(spot, kind, id, typ, options string) in {
	opts := ""
	if options != "" {
		var parts []string
		for _, o := range strings.Split(options, ",") {
			parts = append(parts, fmt.Sprintf(`{"id":%q,"label":%q}`, o, strings.ToUpper(o)))
		}
		opts = `,"options":[` + strings.Join(parts, ",") + `]`
	}
	return in{"definitions", spot + "/" + kind + "/" + id,
		fmt.Sprintf(`{"kind":%q,"spot":%q,"id":%q,"label":"L","type":%q%s}`, kind, spot, id, typ, opts)}
}

func profile(spot, member, patch string) in {
	return in{"profiles", spot + "/" + member,
		fmt.Sprintf(`{"spot":%q,"member":%q,"ts":%d,"profile":%s}`, spot, member, now-day, patch)}
}

func props(spot, member, custom, form string) in {
	return in{"properties", spot + "/" + member,
		fmt.Sprintf(`{"spot":%q,"member":%q,"ts":%d,"custom":%s,"form":%s}`, spot, member, now-day, custom, form)}
}

func activity(spot, member, id, typ, resource string, ts int64) in {
	res := ""
	if resource != "" {
		res = fmt.Sprintf(`,"resource":{"id":%q,"title":"T"}`, resource)
	}
	idf := ""
	if id != "" {
		idf = fmt.Sprintf(`,"id":%q`, id)
	}
	return in{"activities", spot + "/" + member,
		fmt.Sprintf(`{"spot":%q,"member":%q,"ts":%d,"type":%q%s%s}`, spot, member, ts, typ, idf, res)}
}

func blacklist(spot, g, member string, del bool) in {
	r := in{"definitions", spot + "/blacklist/" + g + "/" + member,
		fmt.Sprintf(`{"kind":"blacklist","spot":%q,"group":%q,"member":%q}`, spot, g, member)}
	if del {
		r.value = ""
	}
	return r
}

// check asserts, for each group of want, exactly which of the listed members
// are in it.
func check(t *testing.T, m *Model, spot string, members []string, want map[string][]string) {
	t.Helper()
	got := m.Memberships()
	for g, wantIn := range want {
		var in []string
		for _, u := range members {
			if got[spot+"/"+g+"/"+u] {
				in = append(in, u)
			}
		}
		sort.Strings(wantIn)
		if !reflect.DeepEqual(in, wantIn) && (len(in) != 0 || len(wantIn) != 0) {
			t.Errorf("group %s: members %v, want %v", g, in, wantIn)
		}
	}
	if p := m.Problems(); len(p) > 0 {
		t.Errorf("model problems: %v", p)
	}
}

func noDeadLetters(t *testing.T, m *Model) {
	t.Helper()
	if d := m.DeadLettered(); len(d) > 0 {
		t.Fatalf("unexpected dead letters at offsets %v", d)
	}
}

func TestNegativeOpsOnUnset(t *testing.T) {
	setup := []in{
		schema("s", "property", "plan", "single_select", "free,pro"),
		schema("s", "property", "interests", "multi_select", "ai,go"),
		schema("s", "property", "beta", "boolean", ""),
		schema("s", "property", "seats", "number", ""),
		schema("s", "question", "bio", "text", ""),
		// bare: only a status. full: every field set.
		profile("s", "bare", `{"status":"accepted"}`),
		profile("s", "full", `{"status":"accepted","first_name":"Ada","language":"fr","email":"ada@x.io",
			"tags":["vip"],"static_groups":["st1"],"utm":{"source":"google"}}`),
		props("s", "full", `{"plan":"pro","interests":["ai"],"beta":false,"seats":3}`, `{"bio":"hello"}`),
		// empty: an empty set is unset, whether a profile set or an empty
		// multi-select value.
		profile("s", "empty", `{"status":"accepted","tags":[],"static_groups":[]}`),
		props("s", "empty", `{"interests":[]}`, `null`),
	}
	members := []string{"bare", "empty", "full"}
	cases := []struct {
		rule string
		want []string
	}{
		{`{"field":"profile.first_name","op":"neq","value":"ada"}`, []string{"bare", "empty"}},
		{`{"field":"profile.first_name","op":"eq","value":"ada"}`, []string{"full"}},
		{`{"field":"profile.language","op":"not_in","value":["fr","en"]}`, []string{"bare", "empty"}},
		{`{"field":"profile.language","op":"in","value":["FR"]}`, []string{"full"}},
		{`{"field":"profile.email","op":"not_contains","value":"@"}`, []string{"bare", "empty"}},
		{`{"field":"profile.email","op":"contains","value":""}`, []string{"full"}},
		{`{"field":"profile.tags","op":"has_none","value":["vip"]}`, []string{"bare", "empty"}},
		{`{"field":"profile.tags","op":"has_all","value":["vip"]}`, []string{"full"}},
		{`{"field":"profile.tags","op":"is_not_set"}`, []string{"bare", "empty"}},
		{`{"field":"profile.static_groups","op":"has_none","value":["st1"]}`, []string{"bare", "empty"}},
		{`{"field":"profile.static_groups","op":"is_set"}`, []string{"full"}},
		{`{"field":"profile.utm.source","op":"neq","value":"google"}`, []string{"bare", "empty"}},
		{`{"field":"profile.utm.medium","op":"not_in","value":["cpc"]}`, []string{"bare", "empty", "full"}},
		{`{"field":"profile.status","op":"not_in","value":["pending"]}`, []string{"bare", "empty", "full"}},
		{`{"field":"custom.plan","op":"not_in","value":["pro"]}`, []string{"bare", "empty"}},
		{`{"field":"custom.plan","op":"in","value":["pro"]}`, []string{"full"}},
		{`{"field":"custom.interests","op":"has_none","value":["ai"]}`, []string{"bare", "empty"}},
		{`{"field":"custom.interests","op":"is_not_set"}`, []string{"bare", "empty"}},
		// is_false is not a negative op: false on unset.
		{`{"field":"custom.beta","op":"is_false"}`, []string{"full"}},
		{`{"field":"custom.beta","op":"is_true"}`, nil},
		{`{"field":"custom.seats","op":"neq","value":3}`, []string{"bare", "empty"}},
		{`{"field":"custom.seats","op":"lt","value":100}`, []string{"full"}},
		{`{"field":"form.bio","op":"not_contains","value":"ELL"}`, []string{"bare", "empty"}},
		{`{"field":"profile.registered_at","op":"before","value":4102444800000}`, nil},
		{`{"not":{"field":"profile.registered_at","op":"before","value":4102444800000}}`, []string{"bare", "empty", "full"}},
		{`{"all":[]}`, []string{"bare", "empty", "full"}},
		{`{"any":[]}`, nil},
		{`{"not":{"any":[]}}`, []string{"bare", "empty", "full"}},
	}
	for i, c := range cases {
		t.Run(c.rule, func(t *testing.T) {
			m := New(now, false)
			run(t, m, append(setup, group("s", fmt.Sprintf("g%d", i), c.rule)))
			noDeadLetters(t, m)
			check(t, m, "s", members, map[string][]string{fmt.Sprintf("g%d", i): c.want})
		})
	}
}

func TestCaseFolding(t *testing.T) {
	setup := []in{
		schema("s", "property", "plan", "single_select", "Pro,pro"),
		schema("s", "property", "nick", "text", ""),
		profile("s", "a", `{"status":"accepted","first_name":"ADA","last_name":"\u212Aelvin","title":"ΣΊΣΥΦΟΣ",
			"tags":["VIP","Beta"],"static_groups":["S1"],"role":"Straße"}`),
		profile("s", "b", `{"status":"invited","first_name":"ada","last_name":"kelvin","title":"σίσυφος",
			"tags":["vip"],"static_groups":["s1"],"role":"STRASSE"}`),
		profile("s", "c", `{"status":"pending","first_name":"Adam","last_name":"KELVIN","title":"ςίσυφος",
			"tags":["ωmega"],"role":"STRAẞE"}`),
		props("s", "a", `{"plan":"Pro","nick":"ÉLODIE"}`, `null`),
		props("s", "b", `{"plan":"pro","nick":"élodie"}`, `null`),
	}
	members := []string{"a", "b", "c"}
	cases := []struct {
		rule string
		want []string
	}{
		{`{"field":"profile.first_name","op":"eq","value":"Ada"}`, []string{"a", "b"}},
		{`{"field":"profile.first_name","op":"starts_with","value":"ADA"}`, []string{"a", "b", "c"}},
		{`{"field":"profile.first_name","op":"ends_with","value":"dA"}`, []string{"a", "b"}},
		// U+212A KELVIN SIGN folds with k and K.
		{`{"field":"profile.last_name","op":"eq","value":"kelvin"}`, []string{"a", "b", "c"}},
		{`{"field":"profile.last_name","op":"in","value":["\u212AELVIN"]}`, []string{"a", "b", "c"}},
		// Σ, σ and ς are one simple-folding orbit.
		{`{"field":"profile.title","op":"eq","value":"σίσυφοσ"}`, []string{"a", "b", "c"}},
		{`{"field":"profile.title","op":"contains","value":"ΊΣ"}`, []string{"a", "b", "c"}},
		// Simple folding only: ß is not "ss", but ẞ (U+1E9E) folds with ß.
		{`{"field":"profile.role","op":"eq","value":"strasse"}`, []string{"b"}},
		{`{"field":"profile.role","op":"eq","value":"straße"}`, []string{"a", "c"}},
		{`{"field":"profile.tags","op":"has_any","value":["vIp"]}`, []string{"a", "b"}},
		{`{"field":"profile.tags","op":"has_all","value":["vip","BETA"]}`, []string{"a"}},
		{`{"field":"profile.tags","op":"has_none","value":["ΩMEGA"]}`, []string{"a", "b"}},
		// static_groups and option ids compare exactly.
		{`{"field":"profile.static_groups","op":"has_any","value":["s1"]}`, []string{"b"}},
		{`{"field":"custom.plan","op":"in","value":["pro"]}`, []string{"b"}},
		{`{"field":"custom.plan","op":"not_in","value":["Pro"]}`, []string{"b", "c"}},
		{`{"field":"custom.nick","op":"eq","value":"Élodie"}`, []string{"a", "b"}},
	}
	for i, c := range cases {
		t.Run(c.rule, func(t *testing.T) {
			m := New(now, false)
			run(t, m, append(setup, group("s", fmt.Sprintf("g%d", i), c.rule)))
			noDeadLetters(t, m)
			check(t, m, "s", members, map[string][]string{fmt.Sprintf("g%d", i): c.want})
		})
	}
}

func TestDateBoundaries(t *testing.T) {
	// One member per instant around the boundaries; registered_at is the
	// instant, given as epoch ms; m_rfc uses an RFC 3339 string with an
	// offset for now-30d exactly.
	instants := map[string]int64{
		"m_future":    now + 1,
		"m_now":       now,
		"m_now-1":     now - 1,
		"m_30d":       now - 30*day,
		"m_30d-1":     now - 30*day - 1,
		"m_12h":       now - 12*hour,
		"m_12h-1":     now - 12*hour - 1,
		"m_epoch":     0,
		"m_negative":  -day,
		"m_far_past":  now - 400*day,
		"m_far_futur": now + 400*day,
	}
	var members []string
	var setup []in
	for u, ts := range instants {
		members = append(members, u)
		setup = append(setup, profile("s", u, fmt.Sprintf(`{"status":"accepted","registered_at":%d}`, ts)))
	}
	// now-30d = 2026-10-21T09:00:00Z = 2026-10-21T11:00:00+02:00.
	members = append(members, "m_rfc")
	setup = append(setup, profile("s", "m_rfc", `{"status":"accepted","registered_at":"2026-10-21T11:00:00+02:00"}`))
	sort.Strings(members)
	all := func(except ...string) []string {
		var out []string
		for _, u := range members {
			skip := false
			for _, e := range except {
				skip = skip || e == u
			}
			if !skip {
				out = append(out, u)
			}
		}
		return out
	}
	f := func(op, value string) string {
		return fmt.Sprintf(`{"field":"profile.registered_at","op":%q,"value":%s}`, op, value)
	}
	cases := []struct {
		name, rule string
		want       []string
	}{
		{"within_last 30d", f("within_last", `{"days":30}`), []string{"m_12h", "m_12h-1", "m_30d", "m_now", "m_now-1", "m_rfc"}},
		{"more_than_ago 30d", f("more_than_ago", `{"days":30}`), []string{"m_30d-1", "m_epoch", "m_far_past", "m_negative"}},
		{"within_last 12h", f("within_last", `{"hours":12}`), []string{"m_12h", "m_now", "m_now-1"}},
		{"more_than_ago 12h", f("more_than_ago", `{"hours":12}`), all("m_future", "m_far_futur", "m_now", "m_now-1", "m_12h")},
		{"within_last 0d", f("within_last", `{"days":0}`), []string{"m_now"}},
		{"more_than_ago 0h", f("more_than_ago", `{"hours":0}`), all("m_future", "m_far_futur", "m_now")},
		{"before now", f("before", fmt.Sprint(now)), all("m_future", "m_far_futur", "m_now")},
		{"after now", f("after", `"2026-11-20T10:00:00+01:00"`), []string{"m_far_futur", "m_future"}},
		{"between inclusive", f("between", fmt.Sprintf(`[%d,"2026-11-20T09:00:00Z"]`, now-30*day)),
			[]string{"m_12h", "m_12h-1", "m_30d", "m_now", "m_now-1", "m_rfc"}},
		{"between one instant", f("between", fmt.Sprintf(`[%d,%d]`, now, now)), []string{"m_now"}},
		{"before epoch", f("before", `"1970-01-01T00:00:00Z"`), []string{"m_negative"}},
		{"millisecond fraction", f("after", `"2026-11-20T08:59:59.999999Z"`), []string{"m_far_futur", "m_future", "m_now"}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := New(now, false)
			run(t, m, append(setup, group("s", fmt.Sprintf("g%d", i), c.rule)))
			noDeadLetters(t, m)
			check(t, m, "s", members, map[string][]string{fmt.Sprintf("g%d", i): c.want})
		})
	}
}

func TestActivityCounts(t *testing.T) {
	setup := []in{
		profile("s", "none", `{"status":"accepted"}`),
		profile("s", "other", `{"status":"accepted","last_activity_at":1}`),
		profile("s", "one", `{"status":"accepted","last_activity_at":4102444800000}`),
		profile("s", "two", `{"status":"accepted"}`),
		activity("s", "other", "e1", "attended_live", "live-9", now-day),
		activity("s", "one", "e1", "attended_live", "live-1", now-40*day),
		activity("s", "two", "e1", "attended_live", "live-1", now-day),
		// duplicate id: ignored, even with another resource and ts.
		activity("s", "two", "e1", "attended_live", "live-2", now-2*day),
		activity("s", "two", "", "attended_live", "live-2", now-30*day),
		activity("s", "two", "", "attended_live", "live-2", now-30*day), // no id: not de-duplicated
		activity("s", "two", "j", "joined_spot", "", now+day),           // future
	}
	members := []string{"none", "one", "other", "two"}
	cases := []struct {
		rule string
		want []string
	}{
		{`{"activity":"attended_live","count":{"eq":0}}`, []string{"none"}},
		{`{"activity":"attended_live","resources":["live-1","live-2"],"count":{"eq":0}}`, []string{"none", "other"}},
		{`{"activity":"attended_live","resources":["live-1"]}`, []string{"one", "two"}},
		{`{"activity":"attended_live","resources":["live-2"],"count":{"eq":2}}`, []string{"two"}},
		{`{"activity":"attended_live","count":{"gte":3}}`, []string{"two"}},
		{`{"activity":"attended_live","count":{"lte":1}}`, []string{"none", "one", "other"}},
		{`{"activity":"attended_live","when":{"within_last":{"days":30}}}`, []string{"other", "two"}},
		{`{"activity":"attended_live","when":{"within_last":{"days":30}},"count":{"eq":3}}`, []string{"two"}},
		{`{"activity":"attended_live","when":{"more_than_ago":{"days":30}},"count":{"eq":0}}`, []string{"none", "other", "two"}},
		{`{"activity":"attended_live","when":{"between":[0,` + fmt.Sprint(now-30*day) + `]}}`, []string{"one", "two"}},
		{`{"activity":"joined_spot","when":{"after":` + fmt.Sprint(now) + `}}`, []string{"two"}},
		{`{"activity":"watched_replay","count":{"eq":0}}`, members},
		// effective last_activity_at: the later of the profile value and
		// the newest activity (a future activity counts).
		{`{"field":"profile.last_activity_at","op":"within_last","value":{"days":7}}`, []string{"other"}},
		{`{"field":"profile.last_activity_at","op":"after","value":` + fmt.Sprint(now) + `}`, []string{"one", "two"}},
		{`{"field":"profile.last_activity_at","op":"is_not_set"}`, []string{"none"}},
	}
	for i, c := range cases {
		t.Run(c.rule, func(t *testing.T) {
			m := New(now, false)
			run(t, m, append(setup, group("s", fmt.Sprintf("g%d", i), c.rule)))
			noDeadLetters(t, m)
			check(t, m, "s", members, map[string][]string{fmt.Sprintf("g%d", i): c.want})
		})
	}
}

func TestNestedGroupsWithBlacklist(t *testing.T) {
	members := []string{"u1", "u2", "u3", "u4"}
	steps := []struct {
		name string
		recs []in
		want map[string][]string
	}{
		{"setup", []in{
			static("s", "st"),
			profile("s", "u1", `{"status":"accepted","tags":["vip"],"static_groups":["st"]}`),
			profile("s", "u2", `{"status":"accepted","tags":["VIP"]}`),
			profile("s", "u3", `{"status":"pending"}`),
			profile("s", "u4", `{"status":"invited","tags":["vip"],"static_groups":["st"]}`),
			group("s", "g1", `{"field":"profile.tags","op":"has_any","value":["vip"]}`),
			group("s", "g2", `{"all":[{"group":"g1"},{"group":"st"}]}`),
			group("s", "g3", `{"not":{"group":"g2"}}`),
			group("s", "g4", `{"any":[{"group":"g3"},{"group":"g1"}]}`),
		}, map[string][]string{
			"g1": {"u1", "u2", "u4"}, "g2": {"u1", "u4"}, "g3": {"u2", "u3"}, "g4": {"u1", "u2", "u3", "u4"},
		}},
		{"blacklist u1 from g1 propagates", []in{blacklist("s", "g1", "u1", false)}, map[string][]string{
			"g1": {"u2", "u4"}, "g2": {"u4"}, "g3": {"u1", "u2", "u3"}, "g4": {"u1", "u2", "u3", "u4"},
		}},
		{"blacklist u1 from g3 too", []in{blacklist("s", "g3", "u1", false)}, map[string][]string{
			"g1": {"u2", "u4"}, "g2": {"u4"}, "g3": {"u2", "u3"}, "g4": {"u2", "u3", "u4"},
		}},
		{"ineligible member leaves every group", []in{profile("s", "u4", `{"status":"deactivated"}`)}, map[string][]string{
			"g1": {"u2"}, "g2": nil, "g3": {"u2", "u3"}, "g4": {"u2", "u3"},
		}},
		{"rule update keeps the blacklist", []in{
			group("s", "g1", `{"field":"profile.tags","op":"has_any","value":["vip","other"]}`),
		}, map[string][]string{
			"g1": {"u2"}, "g2": nil, "g3": {"u2", "u3"}, "g4": {"u2", "u3"},
		}},
		{"removing the entry re-admits", []in{blacklist("s", "g1", "u1", true)}, map[string][]string{
			"g1": {"u1", "u2"}, "g2": {"u1"}, "g3": {"u2", "u3"}, "g4": {"u1", "u2", "u3"},
		}},
		{"erase drops the member's blacklist entries", []in{
			{"profiles", "s/u1", ""},
			profile("s", "u1", `{"status":"accepted","tags":["vip"],"static_groups":["st"]}`),
		}, map[string][]string{
			"g1": {"u1", "u2"}, "g2": {"u1"}, "g3": {"u2", "u3"}, "g4": {"u1", "u2", "u3"},
		}},
		{"deleting a referenced group is refused", []in{{"definitions", "s/group/g1", ""}}, map[string][]string{
			"g1": {"u1", "u2"}, "g2": {"u1"},
		}},
		{"a cycle is refused", []in{group("s", "g1", `{"group":"g4"}`)}, map[string][]string{
			"g1": {"u1", "u2"}, "g2": {"u1"},
		}},
		{"type change is refused", []in{static("s", "g4")}, map[string][]string{
			"g4": {"u1", "u2", "u3"},
		}},
		{"delete g4 then its blacklist is gone", []in{
			blacklist("s", "g4", "u2", false),
			{"definitions", "s/group/g4", ""},
			group("s", "g4", `{"group":"g3"}`),
		}, map[string][]string{
			"g4": {"u2", "u3"},
		}},
		{"erase with erase:true", []in{
			{"profiles", "s/u2", `{"spot":"s","member":"u2","ts":1,"erase":true}`},
		}, map[string][]string{
			"g1": {"u1"}, "g3": {"u3"}, "g4": {"u3"},
		}},
	}
	m := New(now, false)
	offset := 0
	wantDead := []int64{}
	for _, st := range steps {
		for i, r := range st.recs {
			rec := engine.Record{Kind: engine.Kind(r.topic), Offset: int64(offset + i), Key: []byte(r.key)}
			if r.value != "" {
				rec.Value = []byte(r.value)
			}
			m.Apply(rec)
		}
		if strings.HasSuffix(st.name, "refused") {
			wantDead = append(wantDead, int64(offset))
		}
		offset += len(st.recs)
		t.Run(st.name, func(t *testing.T) { check(t, m, "s", members, st.want) })
	}
	if got := m.DeadLettered(); !reflect.DeepEqual(got, wantDead) {
		t.Errorf("dead letters at %v, want %v", got, wantDead)
	}
	if _, ok := m.Memberships()["s/g1/gone"]; ok {
		t.Error("unknown member in a group")
	}
}

func TestSchemaChangesReinterpretKeptValues(t *testing.T) {
	m := New(now, false)
	run(t, m, []in{
		profile("s", "u1", `{"status":"accepted"}`),
		profile("s", "u2", `{"status":"accepted"}`),
		// undeclared: kept whatever the type.
		props("s", "u1", `{"plan":"pro","seats":"12","interests":["ai","go"]}`, `{"size":"big"}`),
		props("s", "u2", `{"plan":"gold","seats":12,"interests":["go"]}`, `{"goals":["learn",null]}`),
		// A multi-select value with a null entry is not an array of option
		// ids: it never fits, whatever the declared options.
		props("s", "u1", `null`, `{"goals":["learn"]}`),
		schema("s", "property", "plan", "single_select", "free,pro"),
		schema("s", "property", "seats", "number", ""),
		schema("s", "property", "interests", "multi_select", "ai,go,ml"),
		schema("s", "question", "size", "single_select", "big,small"),
		schema("s", "question", "goals", "multi_select", "learn,hire"),
		group("s", "goals", `{"field":"form.goals","op":"is_set"}`),
		group("s", "plan", `{"field":"custom.plan","op":"is_set"}`),
		group("s", "seats", `{"field":"custom.seats","op":"is_set"}`),
		group("s", "ai", `{"field":"custom.interests","op":"has_any","value":["ai","ml"]}`),
		group("s", "ints", `{"field":"custom.interests","op":"is_set"}`),
		group("s", "size", `{"field":"form.size","op":"in","value":["big"]}`),
	})
	noDeadLetters(t, m)
	members := []string{"u1", "u2"}
	check(t, m, "s", members, map[string][]string{
		"plan": {"u1"}, "seats": {"u2"}, "ai": {"u1"}, "ints": {"u1", "u2"}, "size": {"u1"}, "goals": {"u1"},
	})
	// Removing the unreferenced option "go" drops it from kept values.
	run(t, m, []in{schema("s", "property", "interests", "multi_select", "ai,ml")})
	// Declaring "gold" makes u2's kept value count.
	run(t, m, []in{schema("s", "property", "plan", "single_select", "free,pro,gold")})
	noDeadLetters(t, m)
	check(t, m, "s", members, map[string][]string{
		"plan": {"u1", "u2"}, "ai": {"u1"}, "ints": {"u1"},
	})
	// Removing a referenced option, or changing a referenced type, is refused.
	m2 := New(now, false)
	run(t, m2, []in{
		schema("s", "property", "plan", "single_select", "free,pro"),
		group("s", "g", `{"field":"custom.plan","op":"in","value":["pro"]}`),
		schema("s", "property", "plan", "single_select", "free"),
		schema("s", "property", "plan", "text", ""),
		{"definitions", "s/property/plan", ""},
		schema("s", "property", "plan", "single_select", "pro,enterprise"), // relabel/add: fine
	})
	if got := m2.DeadLettered(); !reflect.DeepEqual(got, []int64{2, 3, 4}) {
		t.Errorf("dead letters %v, want [2 3 4]", got)
	}
}

func TestEventClock(t *testing.T) {
	m := New(now-100*day, true)
	run(t, m, []in{
		group("s", "recent", `{"field":"profile.registered_at","op":"within_last","value":{"days":1}}`),
		profile("s", "u1", `{"status":"accepted","registered_at":`+fmt.Sprint(now-2*day)+`}`),
	})
	// profile() records carry ts now-1d.
	if m.Now() != now-day {
		t.Fatalf("now %d, want %d", m.Now(), now-day)
	}
	check(t, m, "s", []string{"u1"}, map[string][]string{"recent": {"u1"}})
	run(t, m, []in{
		activity("s", "u2", "x", "joined_spot", "", now+day),
		// dead-lettered: does not move the clock.
		{"activities", "s/u2", fmt.Sprintf(`{"spot":"s","member":"u2","ts":%d,"type":"teleported"}`, now+10*day)},
		// a tombstone has no ts.
		{"profiles", "s/u3", ""},
	})
	if m.Now() != now+day {
		t.Fatalf("now %d, want %d", m.Now(), now+day)
	}
	check(t, m, "s", []string{"u1"}, map[string][]string{"recent": nil})
	// An older ts does not move the clock back.
	run(t, m, []in{profile("s", "u1", `{"registered_at":`+fmt.Sprint(now+day/2)+`}`)})
	if m.Now() != now+day {
		t.Fatalf("now %d, want %d", m.Now(), now+day)
	}
	check(t, m, "s", []string{"u1"}, map[string][]string{"recent": {"u1"}})
}

func TestDeadLettersChangeNothing(t *testing.T) {
	m := New(now, false)
	run(t, m, []in{
		schema("s", "property", "seats", "number", ""),
		profile("s", "u1", `{"status":"accepted","tags":["a"]}`),
		group("s", "g", `{"field":"profile.tags","op":"has_any","value":["a"]}`),
		// 3: wrong property type: nothing of the record applies.
		{"properties", "s/u1", `{"spot":"s","member":"u1","ts":1,"custom":{"seats":"x"},"form":{"q":1}}`},
		// 4: key mismatch.
		{"profiles", "s/u2", `{"spot":"s","member":"u1","ts":1,"profile":{"tags":[]}}`},
		// 5: missing ts.
		{"profiles", "s/u1", `{"spot":"s","member":"u1","profile":{"tags":[]}}`},
		// 6: not an object.
		{"profiles", "s/u1", `"{\"spot\":"`},
		// 7: bad rule.
		group("s", "g", `{"field":"profile.tags","op":"eq","value":"a"}`),
		// 8: tombstone on activities.
		{"activities", "s/u1", ""},
		// 9: member first seen in an invalid record does not exist.
		{"profiles", "s/u9", `{"spot":"s","member":"u9","ts":1,"profile":{"status":"nope"}}`},
	})
	if got := m.DeadLettered(); !reflect.DeepEqual(got, []int64{3, 4, 5, 6, 7, 8, 9}) {
		t.Errorf("dead letters %v", got)
	}
	if got := m.Members("s"); !reflect.DeepEqual(got, []string{"u1"}) {
		t.Errorf("members %v", got)
	}
	check(t, m, "s", []string{"u1", "u2"}, map[string][]string{"g": {"u1"}})
}

func TestFold(t *testing.T) {
	for _, c := range []struct {
		a, b string
		eq   bool
	}{
		{"abc", "ABC", true},
		{"k", "\u212A", true},
		{"s", "ſ", true},
		{"ß", "ẞ", true},
		{"ß", "ss", false},
		{"İ", "i", false},
		{"Σ", "ς", true},
		{"ǅ", "ǆ", true},
		{"ǅ", "Ǆ", true},
	} {
		if got := fold(c.a) == fold(c.b); got != c.eq {
			t.Errorf("fold(%q)==fold(%q) is %v, want %v", c.a, c.b, got, c.eq)
		}
	}
}
