package scenario_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/engine/rule"
	"github.com/smartgroups/smartgroups/internal/reference"
	"github.com/smartgroups/smartgroups/internal/scenario"
)

func ndjson(t *testing.T, lines []scenario.Line) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := scenario.WriteNDJSON(&b, lines); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestDeterministic(t *testing.T) {
	cfg := scenario.DefaultConfig()
	for _, seed := range []int64{1, 42, -7} {
		a, b := scenario.GenerateAnnotated(seed, cfg), scenario.GenerateAnnotated(seed, cfg)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("seed %d: two runs differ", seed)
		}
		if !bytes.Equal(ndjson(t, scenario.Generate(seed, cfg)), ndjson(t, scenario.Generate(seed, cfg))) {
			t.Fatalf("seed %d: NDJSON differs", seed)
		}
		if len(a) != cfg.Records {
			t.Errorf("seed %d: %d lines, want %d", seed, len(a), cfg.Records)
		}
	}
	if bytes.Equal(ndjson(t, scenario.Generate(1, cfg)), ndjson(t, scenario.Generate(2, cfg))) {
		t.Error("seeds 1 and 2 give the same scenario")
	}
}

func TestNDJSONRoundTrip(t *testing.T) {
	lines := scenario.Generate(3, scenario.DefaultConfig())
	out := ndjson(t, lines)
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	i := 0
	for sc.Scan() {
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			t.Fatalf("line %d is not a JSON object: %v", i+1, err)
		}
		if len(raw) != 3 || raw["topic"] == nil || raw["key"] == nil || raw["value"] == nil {
			t.Fatalf("line %d: want exactly topic, key and value: %s", i+1, sc.Bytes())
		}
		var l scenario.Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if !reflect.DeepEqual(l, lines[i]) {
			t.Fatalf("line %d: round trip gives %+v, want %+v", i+1, l, lines[i])
		}
		if _, ok := engine.ParseKind(l.Topic); !ok {
			t.Fatalf("line %d: topic %q", i+1, l.Topic)
		}
		rec := l.Record(int64(i))
		if rec.Offset != int64(i) || string(rec.Kind) != l.Topic || rec.Tombstone() != (l.Value == nil) ||
			(l.Key == nil) != (rec.Key == nil) || (l.Key != nil && string(rec.Key) != *l.Key) {
			t.Fatalf("line %d: record %+v does not match the line", i+1, rec)
		}
		i++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if i != len(lines) {
		t.Fatalf("%d lines written, %d read", len(lines), i)
	}

	// A null key and a null value are written as JSON nulls.
	b, err := json.Marshal(scenario.Line{Topic: "profiles"})
	if err != nil || string(b) != `{"topic":"profiles","key":null,"value":null}` {
		t.Fatalf("got %s, %v", b, err)
	}
	if err := scenario.WriteNDJSON(&bytes.Buffer{}, []scenario.Line{{Topic: "profiles", Value: json.RawMessage("{")}}); err == nil {
		t.Fatal("invalid JSON value accepted")
	}
}

// verdicts replays the lines through the reference model, which decodes
// with the engine's decoders and checks definitions with the engine's Defs,
// and returns the offsets it dead-lettered with the reasons.
func verdicts(lines []scenario.Line) (*reference.Model, map[int64]reference.Rejection) {
	m := reference.New(scenario.DefaultNow, false)
	for i, l := range lines {
		m.Apply(l.Record(int64(i)))
	}
	dead := map[int64]reference.Rejection{}
	for _, r := range m.Rejections() {
		dead[r.Offset] = r
	}
	return m, dead
}

func TestHealthyMix(t *testing.T) {
	for _, seed := range []int64{1, 2, 3, 4, 5} {
		lines := scenario.Generate(seed, scenario.DefaultConfig())
		_, dead := verdicts(lines)
		type counts struct{ Valid, Invalid int }
		byTopic := map[string]*counts{}
		for _, topic := range []string{"profiles", "activities", "properties", "definitions"} {
			byTopic[topic] = &counts{}
		}
		// Decoding alone (no definition checks) must also reject some.
		decodeOnly := 0
		defs := engine.NewDefs(engine.DefaultLimits())
		for i, l := range lines {
			c := byTopic[l.Topic]
			if c == nil {
				t.Fatalf("seed %d line %d: topic %q", seed, i, l.Topic)
			}
			if _, bad := dead[int64(i)]; bad {
				c.Invalid++
			} else {
				c.Valid++
			}
			rec := l.Record(int64(i))
			if rec.Kind == engine.KindDefinitions {
				if _, e := engine.DecodeDefinition(rec, engine.DefaultLimits()); e != nil {
					decodeOnly++
				}
			} else if _, e := engine.DecodeMember(rec, engine.DefaultLimits(), defs); e != nil && e.Code != "type_mismatch" {
				decodeOnly++
			}
		}
		n := len(lines)
		invalid := len(dead)
		if invalid*100 < 5*n || (n-invalid)*100 < 60*n {
			t.Errorf("seed %d: %d of %d invalid; want at least 5%% invalid and 60%% valid", seed, invalid, n)
		}
		if decodeOnly*100 < 3*n {
			t.Errorf("seed %d: only %d of %d lines fail decoding alone", seed, decodeOnly, n)
		}
		for topic, c := range byTopic {
			if c.Valid == 0 || c.Invalid == 0 {
				t.Errorf("seed %d: topic %s has %d valid and %d invalid lines; want both", seed, topic, c.Valid, c.Invalid)
			}
		}
		t.Logf("seed %d: %d lines, %d invalid (%d at decoding), by topic %v", seed, n, invalid, decodeOnly, func() string {
			var parts []string
			for _, topic := range []string{"profiles", "activities", "properties", "definitions"} {
				parts = append(parts, topic+"="+jsonString(byTopic[topic]))
			}
			return strings.Join(parts, " ")
		}())
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestIntentMatchesEngine checks that exactly the records the generator
// meant to be invalid are dead-lettered by the engine's decoders and
// definition checks. A failure is a generator bug or an engine bug.
func TestIntentMatchesEngine(t *testing.T) {
	configs := []scenario.Config{
		scenario.DefaultConfig(),
		{Spots: 1, MembersPerSpot: 3, Records: 1500, GroupsPerSpot: 3, Now: scenario.DefaultNow, InvalidRate: 0.3},
		{Spots: 3, MembersPerSpot: 40, Records: 4000, GroupsPerSpot: 12, Now: 1700000000000, InvalidRate: 0.05},
	}
	seeds := int64(8)
	if testing.Short() {
		seeds = 2
	}
	for ci, cfg := range configs {
		for seed := int64(0); seed < seeds; seed++ {
			ann := scenario.GenerateAnnotated(seed, cfg)
			lines := make([]scenario.Line, len(ann))
			for i, a := range ann {
				lines[i] = a.Line
			}
			_, dead := verdicts(lines)
			bad := 0
			for i, a := range ann {
				r, isDead := dead[int64(i)]
				if isDead == a.Invalid {
					continue
				}
				bad++
				if bad <= 10 {
					line, _ := json.Marshal(a.Line)
					if isDead {
						t.Errorf("config %d seed %d line %d (%s) meant valid, dead-lettered: %s: %s\n%s", ci, seed, i, a.What, r.Code, r.Reason, truncate(line))
					} else {
						t.Errorf("config %d seed %d line %d (%s) meant invalid, accepted\n%s", ci, seed, i, a.What, truncate(line))
					}
				}
			}
			if bad > 0 {
				t.Fatalf("config %d seed %d: %d lines disagree", ci, seed, bad)
			}
		}
	}
}

func truncate(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "…"
	}
	return string(b)
}

// TestCoverage checks that a large scenario exercises everything the
// generator promises.
func TestCoverage(t *testing.T) {
	cfg := scenario.Config{Spots: 3, MembersPerSpot: 30, Records: 12000, GroupsPerSpot: 10, Now: scenario.DefaultNow, InvalidRate: 0.1}
	ann := scenario.GenerateAnnotated(11, cfg)
	whats := map[string]int{}
	for _, a := range ann {
		whats[a.What]++
	}
	for _, w := range []string{
		"profile", "profile/first", "activity", "activity/duplicate", "activity/no-id", "properties",
		"erase/tombstone", "erase/flag",
		"def/schema/declare", "def/schema/declare-late", "def/schema/relabel", "def/schema/add-option",
		"def/schema/remove-option", "def/schema/change-type", "def/schema/delete", "def/schema/redeclare",
		"def/static/create", "def/static/update", "def/group/create", "def/group/update", "def/group/delete",
		"def/group/delete-missing", "def/blacklist/put", "def/blacklist/delete",
		"invalid/bad_json", "invalid/key_mismatch", "invalid/null_key", "invalid/missing_ts", "invalid/bad_ts",
		"invalid/missing_spot", "invalid/bad_member_id", "invalid/bad_status", "invalid/bad_profile_field",
		"invalid/oversize_tags", "invalid/missing_profile", "invalid/unknown_activity_type",
		"invalid/missing_resource", "invalid/bad_resource", "invalid/wrong_property_type",
		"invalid/empty_properties", "invalid/tombstone_not_profiles", "invalid/bad_rule", "invalid/cycle",
		"invalid/group_type_change", "invalid/delete_referenced_group", "invalid/delete_referenced_schema",
		"invalid/remove_referenced_option", "invalid/change_referenced_type", "invalid/def_key_mismatch",
		"invalid/def_bad_json", "invalid/def_bad_key", "invalid/missing_name", "invalid/smart_without_rule",
		"invalid/static_with_rule", "invalid/bad_schema", "invalid/blacklist_unknown_group",
		"invalid/blacklist_static_group", "invalid/bad_resources", "def/group/resources",
	} {
		if whats[w] == 0 {
			t.Errorf("no %q record", w)
		}
	}

	// What the valid records contain.
	ops := map[string]bool{}           // "<field kind>:<op>" of attribute triggers
	activities := map[string]bool{}    // activity types of records
	triggerActs := map[string]bool{}   // activity types of triggers
	schemaTypes := map[string]bool{}   // declared types
	features := map[string]bool{}      // miscellaneous
	profileFields := map[string]bool{} // profile fields set or cleared
	current := map[string]string{}     // "<spot>/custom.<id>" -> current type
	for _, a := range ann {
		if a.Invalid || a.Value == nil {
			continue
		}
		var v map[string]any
		dec := json.NewDecoder(bytes.NewReader(a.Value))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		switch a.Topic {
		case "profiles":
			p, _ := v["profile"].(map[string]any)
			for f, x := range p {
				profileFields[f] = true
				if x == nil {
					features["profile null"] = true
				}
				if f == "utm" && x != nil {
					for k := range x.(map[string]any) {
						profileFields["utm."+k] = true
					}
				}
				if f == "tags" {
					for _, tag := range asSlice(x) {
						if s := tag.(string); s != strings.ToLower(s) {
							features["tag with capitals"] = true
						}
					}
				}
			}
			tsFeatures(v["ts"], features)
		case "activities":
			activities[v["type"].(string)] = true
			tsFeatures(v["ts"], features)
			if ts, ok := v["ts"].(json.Number); ok {
				if n, _ := ts.Int64(); n > cfg.Now {
					features["future activity"] = true
				}
			}
		case "properties":
			for _, part := range []string{"custom", "form"} {
				if m, ok := v[part].(map[string]any); ok {
					for _, x := range m {
						if x == nil {
							features["value null"] = true
						}
					}
				}
			}
		case "definitions":
			switch v["kind"] {
			case "property", "question":
				schemaTypes[v["type"].(string)] = true
				prefix := "custom."
				if v["kind"] == "question" {
					prefix = "form."
				}
				current[v["spot"].(string)+"/"+prefix+v["id"].(string)] = v["type"].(string)
			case "group":
				if rule, ok := v["rule"]; ok {
					spot := v["spot"].(string)
					typeOf := func(field string) string { return current[spot+"/"+field] }
					walkRule(rule, typeOf, ops, triggerActs, features)
				}
			}
		}
	}
	for _, f := range []string{"first_name", "last_name", "email", "title", "status", "role", "tags", "language",
		"invited_at", "registered_at", "last_activity_at", "utm", "static_groups",
		"utm.source", "utm.medium", "utm.campaign", "utm.term", "utm.content"} {
		if !profileFields[f] {
			t.Errorf("profile field %s never written", f)
		}
	}
	for _, typ := range rule.ActivityTypes {
		if !activities[typ] {
			t.Errorf("no %s activity", typ)
		}
		if !triggerActs[typ] {
			t.Errorf("no trigger on %s activities", typ)
		}
	}
	for _, typ := range []string{"text", "number", "date", "boolean", "single_select", "multi_select"} {
		if !schemaTypes[typ] {
			t.Errorf("no %s schema", typ)
		}
	}
	wantOps := []string{}
	for _, op := range []string{"eq", "neq", "in", "not_in", "contains", "not_contains", "starts_with", "ends_with", "is_set", "is_not_set"} {
		wantOps = append(wantOps, "string:"+op)
	}
	for _, op := range []string{"in", "not_in"} {
		wantOps = append(wantOps, "status:"+op, "select:"+op)
	}
	for _, op := range []string{"has_any", "has_all", "has_none"} {
		wantOps = append(wantOps, "tags:"+op, "static_groups:"+op, "multi_select:"+op)
	}
	for _, op := range []string{"eq", "neq", "lt", "lte", "gt", "gte", "between"} {
		wantOps = append(wantOps, "number:"+op)
	}
	for _, op := range []string{"before", "after", "between", "within_last", "more_than_ago"} {
		wantOps = append(wantOps, "date:"+op, "custom date:"+op, "when:"+op)
	}
	wantOps = append(wantOps, "boolean:is_true", "boolean:is_false")
	for _, op := range wantOps {
		if !ops[op] {
			t.Errorf("no trigger %s", op)
		}
	}
	for _, f := range []string{
		"ts string", "ts integer", "ts with offset", "future activity", "profile null", "value null",
		"tag with capitals", "count eq 0", "count lte", "count gte", "resources", "group trigger static",
		"group trigger smart", "empty all/any", "not", "days", "hours",
	} {
		if !features[f] {
			t.Errorf("feature %q never generated", f)
		}
	}
	var got []string
	for op := range ops {
		got = append(got, op)
	}
	sort.Strings(got)
	t.Logf("trigger ops: %v", got)
}

func asSlice(x any) []any {
	s, _ := x.([]any)
	return s
}

func tsFeatures(ts any, features map[string]bool) {
	switch v := ts.(type) {
	case string:
		features["ts string"] = true
		if !strings.HasSuffix(v, "Z") {
			features["ts with offset"] = true
		}
	case json.Number:
		features["ts integer"] = true
	}
}

// kindOfType names the field kind of a schema type in the coverage ops.
var kindOfType = map[string]string{
	"text": "string", "number": "number", "date": "custom date", "boolean": "boolean",
	"single_select": "select", "multi_select": "multi_select",
}

// walkRule records the ops, activity types and shapes a rule uses; typeOf
// returns the current type of a custom./form. field.
func walkRule(n any, typeOf func(string) string, ops, acts, features map[string]bool) {
	m, ok := n.(map[string]any)
	if !ok {
		return
	}
	for _, k := range []string{"all", "any"} {
		if kids, ok := m[k]; ok {
			if len(asSlice(kids)) == 0 {
				features["empty all/any"] = true
			}
			for _, c := range asSlice(kids) {
				walkRule(c, typeOf, ops, acts, features)
			}
		}
	}
	if c, ok := m["not"]; ok {
		features["not"] = true
		walkRule(c, typeOf, ops, acts, features)
	}
	if g, ok := m["group"].(string); ok {
		if strings.HasPrefix(g, "st") {
			features["group trigger static"] = true
		} else {
			features["group trigger smart"] = true
		}
	}
	if a, ok := m["activity"].(string); ok {
		acts[a] = true
		if _, ok := m["resources"]; ok {
			features["resources"] = true
		}
		if w, ok := m["when"].(map[string]any); ok {
			for op, v := range w {
				ops["when:"+op] = true
				durationFeatures(v, features)
			}
		}
		if c, ok := m["count"].(map[string]any); ok {
			for op, v := range c {
				features["count "+op] = true
				if op == "eq" && v.(json.Number).String() == "0" {
					features["count eq 0"] = true
				}
			}
		}
	}
	f, ok := m["field"].(string)
	if !ok {
		return
	}
	op := m["op"].(string)
	var kind string
	switch {
	case strings.HasPrefix(f, "profile.utm."):
		kind = "string"
	case f == "profile.status":
		kind = "status"
	case f == "profile.tags", f == "profile.static_groups":
		kind = strings.TrimPrefix(f, "profile.")
	case strings.HasSuffix(f, "_at"):
		kind = "date"
	case strings.HasPrefix(f, "profile."):
		kind = "string"
	default:
		kind = kindOfType[typeOf(f)]
	}
	if kind == "" {
		return
	}
	if op == "is_set" || op == "is_not_set" {
		kind = "string"
	}
	ops[kind+":"+op] = true
	durationFeatures(m["value"], features)
}

func durationFeatures(v any, features map[string]bool) {
	if d, ok := v.(map[string]any); ok {
		for unit := range d {
			features[unit] = true
		}
	}
}

// TestScenarioThroughReference runs scenarios through the reference model
// with both clocks: memberships must be neither empty nor everything, and
// the model must meet nothing the engine's compiler accepted that SPEC
// forbids.
func TestScenarioThroughReference(t *testing.T) {
	cfg := scenario.DefaultConfig()
	for _, eventClock := range []bool{false, true} {
		for seed := int64(1); seed <= 3; seed++ {
			lines := scenario.Generate(seed, cfg)
			m := reference.New(cfg.Now-90*24*3600*1000, eventClock)
			if !eventClock {
				m = reference.New(cfg.Now, false)
			}
			for i, l := range lines {
				m.Apply(l.Record(int64(i)))
				if i%500 == 0 {
					_ = m.Memberships() // evaluate mid-stream too
				}
			}
			got := m.Memberships()
			if p := m.Problems(); len(p) > 0 {
				t.Errorf("seed %d: model problems: %v", seed, p)
			}
			perGroup := map[string]int{}
			for k := range got {
				i := strings.LastIndexByte(k, '/')
				perGroup[k[:i]]++
			}
			if len(got) == 0 || len(perGroup) < 3 {
				t.Errorf("event clock %v seed %d: %d memberships in %d groups; want a few groups with members", eventClock, seed, len(got), len(perGroup))
			}
			if eventClock && m.Now() <= cfg.Now {
				t.Errorf("event clock did not reach the future timestamps: now %d", m.Now())
			}
			t.Logf("event clock %v seed %d: now %s, %d memberships in %d groups", eventClock, seed, rule.FormatMillis(m.Now()), len(got), len(perGroup))
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := scenario.DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := scenario.Config{Spots: 4, MembersPerSpot: 0, Records: -1, GroupsPerSpot: 0, InvalidRate: 2}
	err := bad.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"spots", "members", "records", "groups", "invalid rate"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	// Generate clamps instead of failing.
	lines := scenario.Generate(1, bad)
	if len(lines) == 0 {
		t.Fatal("no lines for a clamped config")
	}
}
