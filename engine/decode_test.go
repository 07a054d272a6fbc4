package engine

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/smartgroups/smartgroups/engine/rule"
)

func memberRec(kind Kind, key, value string) Record {
	r := Record{Kind: kind, Topic: string(kind), Key: []byte(key)}
	if value != "null" {
		r.Value = []byte(value)
	}
	return r
}

func TestDecodeMemberDeadLetters(t *testing.T) {
	d := testDefs(t)
	long := strings.Repeat("x", 257)
	tags := make([]string, 1001)
	for i := range tags {
		tags[i] = fmt.Sprint("t", i)
	}
	tooMany, _ := json.Marshal(tags)
	huge := `{"spot":"acme","member":"u1","ts":0,"profile":{"title":"` + strings.Repeat("a", 1<<20) + `"}}`
	const P, A, C = KindProfiles, KindActivities, KindProperties
	cases := []struct {
		name  string
		kind  Kind
		key   string
		value string
		code  Code
		want  string
	}{
		{"bad JSON", P, "acme/u1", `{"spot":"acme",`, "invalid_json", "record value is not a JSON object"},
		{"trailing garbage", P, "acme/u1", `{"spot":"acme"} x`, "invalid_json", "record value is not a JSON object"},
		{"not an object: array", P, "acme/u1", `[1,2]`, "invalid_json", "record value is not a JSON object"},
		{"not an object: string", A, "acme/u1", `"x"`, "invalid_json", "record value is not a JSON object"},
		{"not an object: JSON null text", C, "acme/u1", `null `, "invalid_json", "record value is not a JSON object"},
		{"empty value", P, "acme/u1", ``, "invalid_json", "record value is not a JSON object"},
		{"invalid UTF-8", P, "acme/u1", "{\"spot\":\"acme\xff\"}", "invalid_json", "not valid UTF-8"},
		{"missing spot", P, "acme/u1", `{"member":"u1","ts":0,"profile":{}}`, "missing_field", "missing required field spot"},
		{"null spot", P, "acme/u1", `{"spot":null,"member":"u1","ts":0,"profile":{}}`, "missing_field", "missing required field spot"},
		{"spot not a string", P, "acme/u1", `{"spot":5,"member":"u1","ts":0,"profile":{}}`, "invalid_field", "record value:"},
		{"missing member", A, "acme/u1", `{"spot":"acme","ts":0,"type":"joined_spot"}`, "missing_field", "missing required field member"},
		{"missing ts", C, "acme/u1", `{"spot":"acme","member":"u1","custom":{"seats":1}}`, "missing_field", "missing required field ts"},
		{"null ts", P, "acme/u1", `{"spot":"acme","member":"u1","ts":null,"profile":{}}`, "missing_field", "missing required field ts"},
		{"ts without offset", P, "acme/u1", `{"spot":"acme","member":"u1","ts":"2026-11-20T09:00:00","profile":{}}`, "invalid_field", `ts: "2026-11-20T09:00:00" is not an RFC 3339 timestamp with an offset`},
		{"ts date only", P, "acme/u1", `{"spot":"acme","member":"u1","ts":"2026-11-20","profile":{}}`, "invalid_field", "is not an RFC 3339 timestamp"},
		{"ts garbage", P, "acme/u1", `{"spot":"acme","member":"u1","ts":"now","profile":{}}`, "invalid_field", "is not an RFC 3339 timestamp"},
		{"ts fraction", P, "acme/u1", `{"spot":"acme","member":"u1","ts":1.5,"profile":{}}`, "invalid_field", "ts: 1.5 is not an integer of epoch milliseconds"},
		{"ts bool", P, "acme/u1", `{"spot":"acme","member":"u1","ts":true,"profile":{}}`, "invalid_field", "ts: expected an RFC 3339 timestamp with an offset or integer epoch milliseconds"},
		{"ts object", P, "acme/u1", `{"spot":"acme","member":"u1","ts":{},"profile":{}}`, "invalid_field", "ts:"},
		{"ts out of range", P, "acme/u1", `{"spot":"acme","member":"u1","ts":99999999999999999999,"profile":{}}`, "invalid_field", "is not an integer of epoch milliseconds"},
		{"key mismatch", P, "acme/u2", `{"spot":"acme","member":"u1","ts":0,"profile":{}}`, "key_mismatch", `record key "acme/u2" does not equal <spot>/<member> "acme/u1" from its value`},
		{"key mismatch spot", A, "other/u1", `{"spot":"acme","member":"u1","ts":0,"type":"joined_spot"}`, "key_mismatch", "does not equal <spot>/<member>"},
		{"missing key", C, "", `{"spot":"acme","member":"u1","ts":0,"custom":{}}`, "key_mismatch", `record key "" does not equal`},
		{"empty spot", P, "/u1", `{"spot":"","member":"u1","ts":0,"profile":{}}`, "invalid_id", "spot must be a non-empty string"},
		{"empty member", P, "acme/", `{"spot":"acme","member":"","ts":0,"profile":{}}`, "invalid_id", "member must be a non-empty string"},
		{"spot too long", P, long + "/u1", `{"spot":"` + long + `","member":"u1","ts":0,"profile":{}}`, "invalid_id", "spot is 257 bytes, longer than the limit of 256 bytes"},
		{"member too long", P, "acme/" + long, `{"spot":"acme","member":"` + long + `","ts":0,"profile":{}}`, "invalid_id", "member is 257 bytes, longer than the limit of 256 bytes"},
		{"spot with NUL", P, "ac\x00me/u1", `{"spot":"ac\u0000me","member":"u1","ts":0,"profile":{}}`, "invalid_id", "spot contains a NUL character"},
		{"member with NUL", P, "acme/u\x001", `{"spot":"acme","member":"u\u00001","ts":0,"profile":{}}`, "invalid_id", "member contains a NUL character"},
		{"slash in spot", P, "ac/me/u1", `{"spot":"ac/me","member":"u1","ts":0,"profile":{}}`, "invalid_id", `spot "ac/me" contains '/', which is reserved as the key separator`},
		{"member not a string", P, "acme/1", `{"spot":"acme","member":1,"ts":0,"profile":{}}`, "invalid_field", "record value:"},

		// profiles
		{"profile missing", P, "acme/u1", `{"spot":"acme","member":"u1","ts":0}`, "missing_field", `a profiles record needs a profile object or "erase": true`},
		{"profile null", P, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"profile":null}`, "missing_field", "needs a profile object"},
		{"erase false without profile", P, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"erase":false}`, "missing_field", "needs a profile object"},
		{"erase not bool", P, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"erase":"yes"}`, "invalid_field", "erase: expected true or false"},
		{"profile not object", P, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"profile":[1]}`, "invalid_field", "profile must be a JSON object"},
		{"first_name number", P, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"profile":{"first_name":5}}`, "invalid_field", "profile.first_name: expected a string"},
		{"valid first_name, invalid status", P, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"profile":{"first_name":"Ada","status":"banned"}}`, "invalid_field", `profile.status: "banned" is not one of accepted, invited, pending, deactivated, unsubscribed, declined, rejected`},
		{"status case", P, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"profile":{"status":"Accepted"}}`, "invalid_field", "profile.status:"},
		{"status number", P, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"profile":{"status":1}}`, "invalid_field", "profile.status:"},
		{"tags not array", P, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"profile":{"tags":"vip"}}`, "invalid_field", "profile.tags: expected an array of strings"},
		{"tags numbers", P, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"profile":{"tags":[1]}}`, "invalid_field", "profile.tags: expected an array of strings"},
		{"too many tags", P, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"profile":{"tags":` + string(tooMany) + `}}`, "invalid_field", "profile.tags: 1001 tags, more than the limit of 1000 per member"},
		{"static_groups not array", P, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"profile":{"static_groups":"g"}}`, "invalid_field", "profile.static_groups: expected an array of group ids"},
		{"static_groups empty id", P, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"profile":{"static_groups":[""]}}`, "invalid_field", "profile.static_groups entry must be a non-empty string"},
		{"registered_at garbage", P, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"profile":{"registered_at":"soon"}}`, "invalid_field", "profile.registered_at:"},
		{"invited_at no offset", P, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"profile":{"invited_at":"2026-01-01T00:00:00"}}`, "invalid_field", "profile.invited_at:"},
		{"utm not object", P, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"profile":{"utm":"google"}}`, "invalid_field", "profile.utm: expected an object"},
		{"utm value number", P, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"profile":{"utm":{"source":1}}}`, "invalid_field", "profile.utm.source: expected a string"},

		// activities
		{"activity type missing", A, "acme/u1", `{"spot":"acme","member":"u1","ts":0}`, "missing_field", "missing required field type (the activity type)"},
		{"unknown activity type", A, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"type":"watched_live","resource":{"id":"x"}}`, "unknown_activity_type", `unknown activity type "watched_live"`},
		{"missing resource", A, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"type":"attended_live"}`, "missing_field", "a attended_live activity needs a resource {id, title}"},
		{"null resource", A, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"type":"opened_document","resource":null}`, "missing_field", "needs a resource"},
		{"resource not object", A, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"type":"opened_link","resource":"x"}`, "invalid_field", "resource: expected an object {id, title}"},
		{"resource array", A, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"type":"opened_link","resource":[]}`, "invalid_field", "resource: expected an object {id, title}"},
		{"resource without id", A, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"type":"opened_link","resource":{"title":"x"}}`, "missing_field", "resource.id: expected a string"},
		{"resource empty id", A, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"type":"opened_link","resource":{"id":""}}`, "invalid_id", "resource id must be a non-empty string"},
		{"resource title number", A, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"type":"opened_link","resource":{"id":"l","title":5}}`, "invalid_field", "resource.title: expected a string"},
		{"activity id number", A, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"id":5,"type":"joined_spot"}`, "invalid_field", "id: expected a string"},
		{"activity id empty", A, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"id":"","type":"joined_spot"}`, "invalid_id", "activity id must be a non-empty string"},
		{"activity id too long", A, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"id":"` + long + `","type":"joined_spot"}`, "invalid_id", "activity id is 257 bytes"},

		// properties
		{"no custom nor form", C, "acme/u1", `{"spot":"acme","member":"u1","ts":0}`, "missing_field", "a properties record needs a custom or form object"},
		{"custom not object", C, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"custom":[1]}`, "invalid_field", "custom: expected an object of property id to value"},
		{"form not object", C, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"form":"x"}`, "invalid_field", "form: expected an object of question id to value"},
		{"text gets number", C, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"custom":{"nick":5}}`, "type_mismatch", "custom.nick: expected a string for property type text"},
		{"number gets string", C, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"custom":{"seats":"12"}}`, "type_mismatch", "custom.seats: expected a number for property type number"},
		{"date gets garbage", C, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"custom":{"renewal":"next year"}}`, "type_mismatch", "custom.renewal: expected a date for property type date"},
		{"boolean gets string", C, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"form":{"consent":"yes"}}`, "type_mismatch", "form.consent: expected true or false for question type boolean"},
		{"single_select gets array", C, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"custom":{"plan":["pro"]}}`, "type_mismatch", "custom.plan: expected an option id string for property type single_select"},
		{"undeclared single option", C, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"custom":{"plan":"enterprise"}}`, "type_mismatch", `custom.plan: option "enterprise" is not declared`},
		{"undeclared multi option", C, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"form":{"goals":["learn","fun"]}}`, "type_mismatch", `form.goals: option "fun" is not declared`},
		{"multi_select gets string", C, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"custom":{"interests":"ai"}}`, "type_mismatch", "custom.interests: expected an array of option id strings for property type multi_select"},
		{"valid custom, invalid form", C, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"custom":{"seats":3},"form":{"age":"old"}}`, "type_mismatch", "form.age: expected a number for question type number"},
		{"empty property id", C, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"custom":{"":1}}`, "invalid_id", "custom property id must be a non-empty string"},

		// tombstones and sizes
		{"tombstone on activities", A, "acme/u1", "null", "invalid_record", "a null value only erases a member on the profiles topic; on activities it means nothing"},
		{"tombstone on properties", C, "acme/u1", "null", "invalid_record", "on properties it means nothing"},
		{"tombstone key without slash", P, "acme", "null", "invalid_key", `key "acme" has no '/'`},
		{"tombstone empty member", P, "acme/", "null", "invalid_key", "member must be a non-empty string"},
		{"tombstone empty spot", P, "/u1", "null", "invalid_key", "spot must be a non-empty string"},
		{"record too large", P, "acme/u1", huge, "too_large", fmt.Sprintf("record value is %d bytes, more than the limit of 1048576 bytes (max record bytes)", len(huge))},
		{"unknown kind", Kind("definitions"), "acme/u1", `{"spot":"acme","member":"u1","ts":0}`, "unknown_topic", "are not member records"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mc, rerr := DecodeMember(memberRec(c.kind, c.key, c.value), DefaultLimits(), d)
			require.Nil(t, mc)
			require.NotNil(t, rerr)
			require.Equal(t, c.code, rerr.Code, rerr.Reason)
			require.Contains(t, rerr.Reason, c.want)
			require.Equal(t, rerr.Reason, rerr.Error())
		})
	}
}

func TestDecodeMemberLimitsConfigurable(t *testing.T) {
	d := testDefs(t)
	lim := DefaultLimits()
	lim.MaxTags, lim.MaxRecordBytes = 2, 100
	_, rerr := DecodeMember(memberRec(KindProfiles, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"profile":{"tags":["a","b","c"]}}`), lim, d)
	require.NotNil(t, rerr)
	require.Equal(t, "profile.tags: 3 tags, more than the limit of 2 per member (max tags)", rerr.Reason)
	mc, rerr := DecodeMember(memberRec(KindProfiles, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"profile":{"tags":["a","b"]}}`), lim, d)
	require.Nil(t, rerr)
	require.NotNil(t, mc)
	v := `{"spot":"acme","member":"u1","ts":0,"profile":{"title":"` + strings.Repeat("a", 100) + `"}}`
	_, rerr = DecodeMember(memberRec(KindProfiles, "acme/u1", v), lim, d)
	require.NotNil(t, rerr)
	require.Equal(t, CodeTooLarge, rerr.Code)
	require.Contains(t, rerr.Reason, "more than the limit of 100 bytes")
}

func TestDecodeMemberTimestamps(t *testing.T) {
	d := testDefs(t)
	cases := []struct {
		ts   string
		want rule.Millis
	}{
		{`"2026-11-20T09:00:00Z"`, ms("2026-11-20T09:00:00Z")},
		{`"2026-11-20T10:30:00+01:30"`, ms("2026-11-20T09:00:00Z")},
		{`"2026-11-20T04:00:00-05:00"`, ms("2026-11-20T09:00:00Z")},
		{`"2026-11-20T09:00:00.123Z"`, ms("2026-11-20T09:00:00Z") + 123},
		{`"2026-11-20T09:00:00.123999999Z"`, ms("2026-11-20T09:00:00Z") + 123}, // truncated to ms
		{`1795251600000`, ms("2026-11-21T09:00:00Z")},
		{`0`, 0},
		{`-1000`, -1000},
		{` 1795251600000 `, ms("2026-11-21T09:00:00Z")},
	}
	for _, c := range cases {
		t.Run(c.ts, func(t *testing.T) {
			mc, rerr := DecodeMember(memberRec(KindActivities, "acme/u1", `{"spot":"acme","member":"u1","ts":`+c.ts+`,"type":"joined_spot"}`), DefaultLimits(), d)
			require.Nil(t, rerr)
			require.Equal(t, c.want, mc.TS)
			require.Equal(t, c.want, mc.Activity.TS)
		})
	}
}

func TestDecodeMemberValid(t *testing.T) {
	d := testDefs(t)
	t.Run("profile", func(t *testing.T) {
		mc, rerr := DecodeMember(memberRec(KindProfiles, "acme/u1", `{"spot":"acme","member":"u1","ts":"2026-11-20T09:00:00Z",
			"profile":{"first_name":"Ada","status":"accepted","tags":["vip"],"registered_at":"2026-01-02T00:00:00Z",
			"utm":{"source":"google","gclid":"x"},"static_groups":["g-static-1"],"title":null,"nickname":"A","shoe_size":null},
			"extra":1,"id":"nope"}`), DefaultLimits(), d)
		require.Nil(t, rerr)
		require.Equal(t, KindProfiles, mc.Kind)
		require.Equal(t, "acme", mc.Spot)
		require.Equal(t, "u1", mc.Member)
		require.Equal(t, ms("2026-11-20T09:00:00Z"), mc.TS)
		require.False(t, mc.Erase)
		// unknown: envelope extra, id; profile nickname, shoe_size; utm gclid
		require.Equal(t, 5, mc.Unknown)
		keys := make([]string, 0, len(mc.Profile))
		for k := range mc.Profile {
			keys = append(keys, k)
		}
		require.ElementsMatch(t, []string{"first_name", "status", "tags", "registered_at", "utm", "static_groups", "title"}, keys)
		require.JSONEq(t, `{"source":"google"}`, string(mc.Profile["utm"]))
		require.Equal(t, "null", string(mc.Profile["title"]))
	})
	t.Run("erase", func(t *testing.T) {
		mc, rerr := DecodeMember(memberRec(KindProfiles, "acme/u1", `{"spot":"acme","member":"u1","ts":5,"erase":true}`), DefaultLimits(), d)
		require.Nil(t, rerr)
		require.True(t, mc.Erase)
		require.Equal(t, rule.Millis(5), mc.TS)
		require.Nil(t, mc.Profile)
	})
	t.Run("erase with profile erases", func(t *testing.T) {
		mc, rerr := DecodeMember(memberRec(KindProfiles, "acme/u1", `{"spot":"acme","member":"u1","ts":5,"erase":true,"profile":{"status":"accepted"}}`), DefaultLimits(), d)
		require.Nil(t, rerr)
		require.True(t, mc.Erase)
	})
	t.Run("erase false with profile", func(t *testing.T) {
		mc, rerr := DecodeMember(memberRec(KindProfiles, "acme/u1", `{"spot":"acme","member":"u1","ts":5,"erase":false,"profile":{}}`), DefaultLimits(), d)
		require.Nil(t, rerr)
		require.False(t, mc.Erase)
		require.Empty(t, mc.Profile)
	})
	t.Run("tombstone", func(t *testing.T) {
		mc, rerr := DecodeMember(memberRec(KindProfiles, "acme/u/1", "null"), DefaultLimits(), d)
		require.Nil(t, rerr)
		require.True(t, mc.Erase)
		require.Equal(t, "acme", mc.Spot)
		require.Equal(t, "u/1", mc.Member)
	})
	t.Run("member id with slash", func(t *testing.T) {
		mc, rerr := DecodeMember(memberRec(KindProfiles, "acme/u/1", `{"spot":"acme","member":"u/1","ts":0,"profile":{}}`), DefaultLimits(), d)
		require.Nil(t, rerr)
		require.Equal(t, "u/1", mc.Member)
	})
	t.Run("activity", func(t *testing.T) {
		mc, rerr := DecodeMember(memberRec(KindActivities, "acme/u1", `{"spot":"acme","member":"u1","ts":"2026-11-20T09:00:00Z","id":"evt-9",
			"type":"attended_live","resource":{"id":"live-42","title":"Weekly AMA","url":"x"},"source":"app"}`), DefaultLimits(), d)
		require.Nil(t, rerr)
		require.Equal(t, &rule.Activity{ID: "evt-9", Type: "attended_live", Resource: "live-42", Title: "Weekly AMA", TS: ms("2026-11-20T09:00:00Z")}, mc.Activity)
		require.Equal(t, 1, mc.Unknown)
	})
	t.Run("resource-less activity with resource", func(t *testing.T) {
		mc, rerr := DecodeMember(memberRec(KindActivities, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"type":"left_spot","resource":{"id":"x"}}`), DefaultLimits(), d)
		require.Nil(t, rerr)
		require.Equal(t, "left_spot", mc.Activity.Type)
	})
	t.Run("activity without id", func(t *testing.T) {
		mc, rerr := DecodeMember(memberRec(KindActivities, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"type":"joined_spot"}`), DefaultLimits(), d)
		require.Nil(t, rerr)
		require.Equal(t, &rule.Activity{Type: "joined_spot", TS: 0}, mc.Activity)
	})
	t.Run("properties", func(t *testing.T) {
		mc, rerr := DecodeMember(memberRec(KindProperties, "acme/u1", `{"spot":"acme","member":"u1","ts":0,
			"custom":{"plan":"pro","seats":12,"renewal":"2027-01-01T00:00:00Z","beta":true,"interests":["ai","go"],"undeclared":{"any": [1, 2]},"nick":null},
			"form":{"company_size":"11-50","goals":null}}`), DefaultLimits(), d)
		require.Nil(t, rerr)
		require.Equal(t, 0, mc.Unknown)
		require.Equal(t, `"pro"`, string(mc.Custom["plan"]))
		require.Equal(t, `12`, string(mc.Custom["seats"]))
		require.Equal(t, `{"any":[1,2]}`, string(mc.Custom["undeclared"]), "undeclared values are kept (compacted)")
		v, ok := mc.Custom["nick"]
		require.True(t, ok)
		require.Nil(t, v, "null clears")
		v, ok = mc.Form["goals"]
		require.True(t, ok)
		require.Nil(t, v)
		require.Equal(t, `"11-50"`, string(mc.Form["company_size"]))
	})
	t.Run("date property as epoch millis", func(t *testing.T) {
		_, rerr := DecodeMember(memberRec(KindProperties, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"custom":{"renewal":1795251600000}}`), DefaultLimits(), d)
		require.Nil(t, rerr)
	})
	t.Run("undeclared spot keeps everything", func(t *testing.T) {
		mc, rerr := DecodeMember(memberRec(KindProperties, "other/u1", `{"spot":"other","member":"u1","ts":0,"custom":{"plan":"enterprise"}}`), DefaultLimits(), d)
		require.Nil(t, rerr)
		require.Equal(t, `"enterprise"`, string(mc.Custom["plan"]))
	})
}

// TestDecodeMemberFieldNamesAreExact: unknown fields are ignored and
// counted (SPEC §4); a field that differs from a known one only by case is
// unknown, so it must neither supply the value nor override it.
func TestDecodeMemberFieldNamesAreExact(t *testing.T) {
	d := testDefs(t)
	mc, rerr := DecodeMember(memberRec(KindProfiles, "acme/u1", `{"SPOT":"acme","member":"u1","ts":0,"profile":{}}`), DefaultLimits(), d)
	if rerr == nil {
		require.NotNil(t, mc)
		t.Fatal(`DecodeMember matches envelope fields case-insensitively (encoding/json struct decoding): "SPOT" supplies spot although it is counted as an unknown field`)
	}
	require.Equal(t, CodeMissingField, rerr.Code)
	mc, rerr = DecodeMember(memberRec(KindProfiles, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"profile":{"status":"accepted"},"Profile":{"status":"rejected"}}`), DefaultLimits(), d)
	require.Nil(t, rerr)
	require.Equal(t, `"accepted"`, string(mc.Profile["status"]))
}

// TestDecodeDeterministicReasons: `process` must give the same output
// bytes for the same input (SPEC §5), dead letters included, so a record
// with several faults must always be rejected with the same reason.
func TestDecodeDeterministicReasons(t *testing.T) {
	d := testDefs(t)
	stable := func(t *testing.T, what string, reason func() string) {
		t.Helper()
		first := reason()
		for i := 0; i < 100; i++ {
			if r := reason(); r != first {
				t.Skipf("BUG: %s iterates a Go map, so the reason of a record with several faults varies between runs: %q vs %q", what, first, r)
			}
		}
	}
	decodeReason := func(rec Record) func() string {
		return func() string {
			_, rerr := DecodeMember(rec, DefaultLimits(), d)
			require.NotNil(t, rerr)
			return rerr.Reason
		}
	}
	t.Run("profile", func(t *testing.T) {
		stable(t, "validateProfilePatch", decodeReason(memberRec(KindProfiles, "acme/u1",
			`{"spot":"acme","member":"u1","ts":0,"profile":{"first_name":1,"last_name":2,"email":3,"title":4,"role":5,"language":6,"status":7}}`)))
	})
	t.Run("utm", func(t *testing.T) {
		stable(t, "validateProfilePatch (utm)", decodeReason(memberRec(KindProfiles, "acme/u1",
			`{"spot":"acme","member":"u1","ts":0,"profile":{"utm":{"source":1,"medium":2,"campaign":3,"term":4,"content":5}}}`)))
	})
	t.Run("properties", func(t *testing.T) {
		stable(t, "decodeValues", decodeReason(memberRec(KindProperties, "acme/u1",
			`{"spot":"acme","member":"u1","ts":0,"custom":{"seats":"a","nick":1,"beta":2,"plan":"zz","renewal":"x"}}`)))
	})
	t.Run("rule", func(t *testing.T) {
		stable(t, "compiler.node (only)", func() string {
			_, err := rule.CompileRule(json.RawMessage(`{"field":"profile.first_name","op":"eq","value":"x","a":1,"b":2,"c":3,"d":4}`), d.Catalog("acme"), DefaultLimits().Rule())
			require.Error(t, err)
			return err.Error()
		})
	})
}

func TestProfilePatchApply(t *testing.T) {
	d := testDefs(t)
	apply := func(p *rule.Profile, patch string) []string {
		t.Helper()
		mc, rerr := DecodeMember(memberRec(KindProfiles, "acme/u1", `{"spot":"acme","member":"u1","ts":0,"profile":`+patch+`}`), DefaultLimits(), d)
		require.Nil(t, rerr)
		return mc.Profile.Apply(p)
	}
	var p rule.Profile
	require.Equal(t, []string{"first_name", "registered_at", "static_groups", "status", "tags", "utm"},
		apply(&p, `{"first_name":"Ada","status":"accepted","tags":["vip","b","vip"],"registered_at":"2026-01-02T01:00:00+01:00",
			"utm":{"source":"google","medium":"cpc"},"static_groups":["g2","g1"]}`))
	require.Equal(t, "Ada", *p.FirstName)
	require.Equal(t, []string{"b", "vip"}, p.Tags, "sets are sorted and de-duplicated")
	require.Equal(t, []string{"g1", "g2"}, p.StaticGroups)
	require.Equal(t, ms("2026-01-02T00:00:00Z"), *p.RegisteredAt)
	require.Equal(t, map[string]string{"source": "google", "medium": "cpc"}, p.UTM)

	// Absent fields unchanged; unchanged values report nothing.
	require.Empty(t, apply(&p, `{"first_name":"Ada","tags":["vip","b"]}`))
	require.Empty(t, apply(&p, `{}`))
	// utm merges nested: one key set, one cleared, others kept.
	require.Equal(t, []string{"utm"}, apply(&p, `{"utm":{"campaign":"w1","medium":null}}`))
	require.Equal(t, map[string]string{"source": "google", "campaign": "w1"}, p.UTM)
	// Arrays replace.
	require.Equal(t, []string{"tags"}, apply(&p, `{"tags":["new"]}`))
	require.Equal(t, []string{"new"}, p.Tags)
	// An empty array unsets.
	require.Equal(t, []string{"tags"}, apply(&p, `{"tags":[]}`))
	require.Nil(t, p.Tags)
	// null clears.
	require.Equal(t, []string{"first_name", "registered_at", "static_groups"}, apply(&p, `{"first_name":null,"registered_at":null,"static_groups":null,"title":null}`))
	require.Nil(t, p.FirstName)
	require.Nil(t, p.RegisteredAt)
	require.Nil(t, p.StaticGroups)
	// Clearing every utm key unsets utm; utm null clears it whole.
	require.Equal(t, []string{"utm"}, apply(&p, `{"utm":{"source":null,"campaign":null}}`))
	require.Nil(t, p.UTM)
	apply(&p, `{"utm":{"term":"t"}}`)
	require.Equal(t, []string{"utm"}, apply(&p, `{"utm":null}`))
	require.Nil(t, p.UTM)
	// Status case is kept exactly (it is an enum).
	require.Equal(t, []string{"status"}, apply(&p, `{"status":"pending"}`))
	require.Equal(t, "pending", p.StatusValue())
	// Unknown utm keys are ignored.
	require.Empty(t, apply(&p, `{"utm":{"gclid":"x"}}`))
	require.Nil(t, p.UTM)
}

func TestMergeValues(t *testing.T) {
	var dst map[string]json.RawMessage
	require.Equal(t, []string{"c.a", "c.b"}, mergeValues(&dst, map[string]json.RawMessage{"a": json.RawMessage(`1`), "b": json.RawMessage(`["x"]`)}, "c."))
	require.Empty(t, mergeValues(&dst, map[string]json.RawMessage{"a": json.RawMessage(`1`)}, "c."))
	require.Equal(t, []string{"c.b"}, mergeValues(&dst, map[string]json.RawMessage{"b": json.RawMessage(`["y"]`)}, "c."), "arrays replace")
	require.Equal(t, []string{"c.a"}, mergeValues(&dst, map[string]json.RawMessage{"a": nil, "zz": nil}, "c."), "null clears; clearing an absent id changes nothing")
	require.Equal(t, map[string]json.RawMessage{"b": json.RawMessage(`["y"]`)}, dst)
}

func TestDecodeDefinition(t *testing.T) {
	long := strings.Repeat("g", 257)
	bad := []struct {
		name, key, value string
		code             Code
		want             string
	}{
		{"key one part", "acme", `{}`, "invalid_key", `definitions key "acme" is not <spot>/<kind>/<id>`},
		{"key two parts", "acme/group", `{}`, "invalid_key", "is not <spot>/<kind>/<id>"},
		{"unknown kind", "acme/segment/g1", `{}`, "invalid_key", `kind "segment" is not group, property, question or blacklist`},
		{"empty spot", "/group/g1", `{}`, "invalid_key", "spot must be a non-empty string"},
		{"empty group id", "acme/group/", "null", "invalid_key", "group id must be a non-empty string"},
		{"slash in group id", "acme/group/a/b", "null", "invalid_key", `group id "a/b" contains '/'`},
		{"group id too long", "acme/group/" + long, "null", "invalid_key", "group id is 257 bytes"},
		{"NUL in property id", "acme/property/a\x00", "null", "invalid_key", "property id contains a NUL character"},
		{"blacklist without member", "acme/blacklist/g1", "null", "invalid_key", "blacklist key \"acme/blacklist/g1\" is not <spot>/blacklist/<group>/<member>"},
		{"blacklist empty member", "acme/blacklist/g1/", "null", "invalid_key", "member must be a non-empty string"},
		{"not JSON", "acme/group/g1", `{"kind":`, "invalid_json", "definition value is not a JSON object"},
		{"not object", "acme/group/g1", `[1]`, "invalid_json", "definition value is not a JSON object"},
		{"empty value", "acme/group/g1", ``, "invalid_json", "definition value is not a JSON object"},
		{"invalid UTF-8", "acme/group/g1", "{\"kind\":\"gr\xffoup\"}", "invalid_json", "definition value is not a JSON object"},
		{"kind mismatch", "acme/group/g1", `{"kind":"property","spot":"acme","id":"g1"}`, "key_mismatch", `definition kind "property" does not match key "acme/group/g1"`},
		{"kind missing", "acme/group/g1", `{"spot":"acme","id":"g1"}`, "key_mismatch", `definition kind "" does not match key`},
		{"spot mismatch", "acme/group/g1", `{"kind":"group","spot":"other","id":"g1"}`, "key_mismatch", `definition spot "other" does not match key "acme/group/g1"`},
		{"kind not string", "acme/group/g1", `{"kind":1,"spot":"acme"}`, "invalid_field", "definition:"},
		{"group id mismatch", "acme/group/g1", `{"kind":"group","spot":"acme","id":"g2","type":"static","name":"x"}`, "key_mismatch", `group id "g2" does not match key "acme/group/g1"`},
		{"group bad type", "acme/group/g1", `{"kind":"group","spot":"acme","id":"g1","type":"dynamic","name":"x"}`, "invalid_field", `group "g1": type must be static or smart, not "dynamic"`},
		{"group no name", "acme/group/g1", `{"kind":"group","spot":"acme","id":"g1","type":"static"}`, "missing_field", `group "g1": name is required`},
		{"group blank name", "acme/group/g1", `{"kind":"group","spot":"acme","id":"g1","type":"static","name":"  "}`, "missing_field", "name is required"},
		{"smart without rule", "acme/group/g1", `{"kind":"group","spot":"acme","id":"g1","type":"smart","name":"x"}`, "missing_field", `smart group "g1": rule is required`},
		{"smart null rule", "acme/group/g1", `{"kind":"group","spot":"acme","id":"g1","type":"smart","name":"x","rule":null}`, "missing_field", "rule is required"},
		{"static with rule", "acme/group/g1", `{"kind":"group","spot":"acme","id":"g1","type":"static","name":"x","rule":{"all":[]}}`, "invalid_field", `static group "g1" cannot have a rule`},
		{"group name not string", "acme/group/g1", `{"kind":"group","spot":"acme","id":"g1","type":"static","name":5}`, "invalid_field", "group definition:"},
		{"property id mismatch", "acme/property/p1", `{"kind":"property","spot":"acme","id":"p2","type":"text"}`, "key_mismatch", `property id "p2" does not match key`},
		{"property bad type", "acme/property/p1", `{"kind":"property","spot":"acme","id":"p1","type":"string"}`, "invalid_definition", `property "p1": type "string" is not one of text, number, date, boolean, single_select, multi_select`},
		{"select without options", "acme/question/q1", `{"kind":"question","spot":"acme","id":"q1","type":"single_select"}`, "invalid_definition", `question "q1": a single_select needs a non-empty options list`},
		{"options on text", "acme/property/p1", `{"kind":"property","spot":"acme","id":"p1","type":"text","options":[{"id":"a"}]}`, "invalid_definition", "options are only allowed for single_select and multi_select"},
		{"duplicate option", "acme/property/p1", `{"kind":"property","spot":"acme","id":"p1","type":"multi_select","options":[{"id":"a"},{"id":"a"}]}`, "invalid_definition", `option id "a" is declared twice`},
		{"empty option id", "acme/property/p1", `{"kind":"property","spot":"acme","id":"p1","type":"multi_select","options":[{"id":""}]}`, "invalid_definition", "property p1 option id must be a non-empty string"},
		{"options not array", "acme/property/p1", `{"kind":"property","spot":"acme","id":"p1","type":"multi_select","options":{"a":1}}`, "invalid_field", "property definition:"},
		{"blacklist mismatch", "acme/blacklist/g1/u1", `{"kind":"blacklist","spot":"acme","group":"g1","member":"u2"}`, "key_mismatch", `blacklist entry g1/u2 does not match key "acme/blacklist/g1/u1"`},
		{"too large", "acme/group/g1", `{"kind":"group","spot":"acme","id":"g1","type":"static","name":"` + strings.Repeat("n", 1<<20) + `"}`, "too_large", "more than the limit of 1048576 bytes"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			dc, rerr := DecodeDefinition(defRec(c.key, c.value), DefaultLimits())
			require.Nil(t, dc)
			require.NotNil(t, rerr)
			require.Equal(t, c.code, rerr.Code, rerr.Reason)
			require.Contains(t, rerr.Reason, c.want)
		})
	}

	t.Run("smart group", func(t *testing.T) {
		dc, rerr := DecodeDefinition(defRec("acme/group/g1", `{"kind":"group","spot":"acme","id":"g1","type":"smart","name":"Engaged","icon":"star","description":"d","rule":{"all":[]},"ts":"2026-01-01T00:00:00Z","owner":"x"}`), DefaultLimits())
		require.Nil(t, rerr)
		require.Equal(t, "acme", dc.Spot)
		require.Equal(t, "group", dc.Kind)
		require.Equal(t, "g1", dc.ID)
		require.False(t, dc.Delete)
		require.Equal(t, GroupSmart, dc.Group.Type)
		require.Equal(t, "Engaged", dc.Group.Name)
		require.Equal(t, "star", dc.Group.Icon)
		require.JSONEq(t, `{"all":[]}`, string(dc.Group.Rule))
	})
	t.Run("static group with null rule", func(t *testing.T) {
		dc, rerr := DecodeDefinition(defRec("acme/group/s", `{"kind":"group","spot":"acme","id":"s","type":"static","name":"S","rule":null}`), DefaultLimits())
		require.Nil(t, rerr)
		require.Nil(t, dc.Group.Rule)
	})
	t.Run("group delete", func(t *testing.T) {
		dc, rerr := DecodeDefinition(defRec("acme/group/g1", "null"), DefaultLimits())
		require.Nil(t, rerr)
		require.True(t, dc.Delete)
		require.Nil(t, dc.Group)
	})
	t.Run("property", func(t *testing.T) {
		dc, rerr := DecodeDefinition(defRec("acme/property/plan", `{"kind":"property","spot":"acme","id":"plan","label":"Plan","type":"single_select","options":[{"id":"free","label":"Free"},{"id":"pro","label":"Pro"}]}`), DefaultLimits())
		require.Nil(t, rerr)
		require.Equal(t, rule.TypeSingleSelect, dc.Schema.Type)
		require.True(t, dc.Schema.HasOption("pro"))
		require.False(t, dc.Schema.HasOption("Pro"))
	})
	t.Run("property id with slash", func(t *testing.T) {
		dc, rerr := DecodeDefinition(defRec("acme/property/a/b", `{"kind":"property","spot":"acme","id":"a/b","label":"AB","type":"text"}`), DefaultLimits())
		require.Nil(t, rerr)
		require.Equal(t, "a/b", dc.ID)
	})
	t.Run("question", func(t *testing.T) {
		dc, rerr := DecodeDefinition(defRec("acme/question/q", `{"kind":"question","spot":"acme","id":"q","label":"Q","type":"date"}`), DefaultLimits())
		require.Nil(t, rerr)
		require.Equal(t, "question", dc.Schema.Kind)
	})
	t.Run("blacklist", func(t *testing.T) {
		dc, rerr := DecodeDefinition(defRec("acme/blacklist/g1/u/1", `{"kind":"blacklist","spot":"acme","group":"g1","member":"u/1"}`), DefaultLimits())
		require.Nil(t, rerr)
		require.Equal(t, "g1", dc.ID)
		require.Equal(t, "u/1", dc.Member)
		require.Equal(t, &Blacklist{Kind: "blacklist", Spot: "acme", Group: "g1", Member: "u/1"}, dc.Blacklist)
	})
	t.Run("blacklist delete", func(t *testing.T) {
		dc, rerr := DecodeDefinition(defRec("acme/blacklist/g1/u1", "null"), DefaultLimits())
		require.Nil(t, rerr)
		require.True(t, dc.Delete)
		require.Equal(t, "u1", dc.Member)
	})
}
