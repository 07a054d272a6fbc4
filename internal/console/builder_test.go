package console

import (
	"encoding/json"
	"net/url"
	"testing"
)

var testCatalog = &catalog{
	Properties: []schema{{ID: "plan", Type: "single_select", Options: []option{{"free", "Free"}, {"pro", "Pro"}}},
		{ID: "seats", Type: "number"}, {ID: "renewal", Type: "date"}},
	Questions: []schema{{ID: "size", Type: "single_select", Options: []option{{"1-10", "1-10"}}}},
	Groups:    []group{{ID: "ambassadors", Type: "static"}, {ID: "vips", Type: "smart"}},
}

func canon(t *testing.T, raw []byte) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// TestBuilderRoundTrip: a two-level rule loaded into the builder, posted
// back as its form and built again is the same rule.
func TestBuilderRoundTrip(t *testing.T) {
	rules := []string{
		`{"all":[{"all":[{"field":"profile.tags","op":"has_any","value":["vip","beta"]}]},{"any":[{"field":"custom.plan","op":"in","value":["pro"]},{"field":"custom.seats","op":"between","value":[5,20]}]}]}`,
		`{"any":[{"all":[{"activity":"attended_live","resources":["live-1"],"when":{"within_last":{"days":30}},"count":{"gte":2}},{"group":"vips"}]}]}`,
		`{"all":[{"all":[{"field":"profile.registered_at","op":"between","value":["2026-01-01T00:00:00.000Z","2026-01-31T23:59:59.999Z"]},{"field":"profile.status","op":"not_in","value":["invited"]},{"field":"profile.email","op":"is_set"}]}]}`,
		`{"all":[{"all":[{"field":"custom.renewal","op":"more_than_ago","value":{"hours":6}},{"field":"profile.first_name","op":"starts_with","value":"A"},{"activity":"left_spot","count":{"eq":0}}]}]}`,
	}
	for _, r := range rules {
		b := newBuilder()
		b.fromRule(json.RawMessage(r))
		if b.RawMode {
			t.Fatalf("%s: shown as JSON, not as conditions", r)
		}
		form := url.Values{}
		b.toForm(form)
		back := parseBuilder(form)
		back.normalize(testCatalog)
		got, err := back.rule(testCatalog)
		if err != nil {
			t.Fatal(err)
		}
		if canon(t, got) != canon(t, []byte(r)) {
			t.Errorf("round trip of\n %s\ngave\n %s", r, got)
		}
	}
}

func TestBuilderShowsOtherRulesAsJSON(t *testing.T) {
	for _, r := range []string{
		`{"not":{"group":"vips"}}`,
		`{"all":[{"all":[{"any":[{"group":"vips"}]}]}]}`,
	} {
		b := newBuilder()
		b.fromRule(json.RawMessage(r))
		if !b.RawMode {
			t.Errorf("%s: not shown as JSON", r)
		}
	}
}

func TestBuilderPlacesErrors(t *testing.T) {
	b := newBuilder()
	b.fromRule(json.RawMessage(`{"all":[{"all":[{"group":"a"}]},{"any":[{"group":"b"},{"group":"c"}]}]}`))
	b.placeError(`rule.all[1].any[1]: group "c" does not exist`)
	b.placeError(`rule.all[0]: something about the first condition`)
	b.placeError(`rule has more than the limit of 1000 nodes (max rule nodes)`)
	if b.Conds[1].Triggers[1].Err == "" || b.Conds[1].Triggers[0].Err != "" || b.Conds[0].Triggers[0].Err != "" {
		t.Errorf("trigger errors: %+v", b.Conds)
	}
	if b.Conds[0].Err == "" || b.Err == "" {
		t.Errorf("condition error %q, builder error %q", b.Conds[0].Err, b.Err)
	}
}
