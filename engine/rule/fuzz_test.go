package rule

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzMembers are the member views rules are evaluated on while fuzzing.
func fuzzMembers() []*tMember {
	now := evalNow
	return []*tMember{
		{},
		{p: Profile{FirstName: sp("École"), LastName: sp(""), Email: sp("a@b.c"), Title: sp("\u212A"), Status: sp("accepted"),
			Role: sp("admin"), Language: sp("fr"), Tags: []string{"vip", "VIP2"}, InvitedAt: mp(now - msDay),
			RegisteredAt: mp(now - 40*msDay), LastActivityAt: mp(now + msHour), UTM: map[string]string{"source": "g", "term": ""},
			StaticGroups: []string{"beta-testers"}},
			custom: raws("plan", `"pro"`, "seats", `12`, "renewal", `"2027-01-01T00:00:00Z"`, "beta", `true`, "nick", `"n"`, "interests", `["ai","zz"]`),
			form:   raws("company_size", `"1-10"`, "goals", `["learn"]`, "bio", `5`, "age", `-1.5`, "joined", `0`, "consent", `false`),
			acts: []Activity{{Type: "attended_live", Resource: "live-1", TS: now - msDay}, {Type: "joined_spot", TS: now},
				{Type: "opened_link", Resource: "l", TS: now + msDay}},
			groups: map[string]bool{"vips": true}},
		{p: Profile{Status: sp("rejected"), Tags: []string{}},
			custom: raws("plan", `["pro"]`, "seats", `"x"`, "renewal", `true`, "interests", `"ai"`),
			acts:   []Activity{{Type: "attended_live", Resource: "live-2", TS: -1 << 40}}},
	}
}

func FuzzCompileRule(f *testing.F) {
	d := testDefs(f)
	cat := d.Catalog("acme")
	members := fuzzMembers()
	nows := []Millis{evalNow, 0, evalNow + 30*msDay}
	f.Fuzz(func(t *testing.T, rule []byte) {
		r, err := CompileRule(rule, cat, DefaultLimits())
		if err != nil {
			if r != nil {
				t.Fatal("rule and error")
			}
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if r.Root == nil || r.Nodes < 1 || r.Nodes > DefaultLimits().MaxRuleNodes {
			t.Fatalf("rule with %d nodes", r.Nodes)
		}
		if !json.Valid([]byte(r.Canonical)) || !utf8.ValidString(r.Canonical) && utf8.Valid(rule) {
			t.Fatalf("canonical %q is not valid JSON", r.Canonical)
		}
		for _, dep := range r.Deps {
			if len(dep) < 3 || dep[1] != '.' || !strings.ContainsRune("pcfag", rune(dep[0])) {
				t.Fatalf("dependency %q", dep)
			}
		}
		// The canonical form compiles to itself, with the same meaning.
		r2, err := CompileRule(json.RawMessage(r.Canonical), cat, DefaultLimits())
		if err != nil {
			t.Fatalf("canonical %s does not compile: %v", r.Canonical, err)
		}
		if r2.Canonical != r.Canonical || strings.Join(r2.Deps, ",") != strings.Join(r.Deps, ",") ||
			r2.TimeDependent != r.TimeDependent || r2.Nodes != r.Nodes {
			t.Fatalf("canonical recompiles differently: %+v vs %+v", r, r2)
		}
		// Its negation, when within limits, is its complement.
		neg, negErr := CompileRule(json.RawMessage(`{"not":`+r.Canonical+`}`), cat, DefaultLimits())
		for _, m := range members {
			for _, now := range nows {
				v, err := Eval(r, m, now)
				if err != nil {
					t.Fatal(err)
				}
				v2, _ := Eval(r2, m, now)
				ev, ex, err := Explain(r, m, now)
				if err != nil || v2 != v || ev != v || ex["value"] != v {
					t.Fatalf("eval %v, recompiled %v, explain %v/%v (%v)", v, v2, ev, ex["value"], err)
				}
				if _, err := json.Marshal(ex); err != nil {
					t.Fatalf("explain tree does not marshal: %v", err)
				}
				if negErr == nil {
					if nv, _ := Eval(neg, m, now); nv == v {
						t.Fatalf("not(%s) = %v = rule", r.Canonical, nv)
					}
				}
				inst, err := FlipInstants(r.Root, m, now, nil)
				if err != nil {
					t.Fatal(err)
				}
				for _, x := range inst {
					if x <= now {
						t.Fatalf("flip instant %d not after now %d", x, now)
					}
				}
				if !r.TimeDependent && len(inst) > 0 {
					t.Fatalf("time-independent rule with timers %v", inst)
				}
				checkNextFlip(t, r, m, now, false)
			}
		}
	})
}
