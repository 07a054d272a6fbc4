package engine

// The member-record decoder as it was before the single-pass scanner
// (engine/internal/jsonscan): every record unmarshalled into map[string]json.RawMessage
// and each field decoded with encoding/json. Kept as the reference that
// FuzzDecodeMemberDifferential and TestDecodeMemberMatchesLegacy compare the
// production decoder against; do not change its behaviour.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/smartgroups/smartgroups/engine/rule"
)

var errLegacyNotTimestamp = errors.New("expected an RFC 3339 timestamp with an offset or integer epoch milliseconds")

type legacyEnvelope struct {
	Spot    *string         `json:"spot"`
	Member  *string         `json:"member"`
	TS      json.RawMessage `json:"ts"`
	Erase   json.RawMessage `json:"erase"`
	Profile json.RawMessage `json:"profile"`
	// activities
	ID       json.RawMessage `json:"id"`
	Type     json.RawMessage `json:"type"`
	Resource json.RawMessage `json:"resource"`
	// properties
	Custom json.RawMessage `json:"custom"`
	Form   json.RawMessage `json:"form"`
}

var legacyEnvelopeFields = map[Kind]map[string]bool{
	KindProfiles:   {"spot": true, "member": true, "ts": true, "erase": true, "profile": true},
	KindActivities: {"spot": true, "member": true, "ts": true, "id": true, "type": true, "resource": true},
	KindProperties: {"spot": true, "member": true, "ts": true, "custom": true, "form": true},
}

func legacyDecodeMember(rec Record, lim Limits, schemas SchemaLookup) (*MemberChange, *RecordError) {
	if e := checkSize(rec, lim); e != nil {
		return nil, e
	}
	if rec.Tombstone() {
		if rec.Kind != KindProfiles {
			return nil, rerr("invalid_record", "a null value only erases a member on the profiles topic; on %s it means nothing", rec.Kind)
		}
		spot, member, ok := strings.Cut(string(rec.Key), "/")
		if !ok {
			return nil, rerr("invalid_key", "a null value erases the member named by the key <spot>/<member>, but key %q has no '/'", string(rec.Key))
		}
		if err := rule.CheckKeyID("spot", spot); err != nil {
			return nil, rerr("invalid_key", "key %q: %v", string(rec.Key), err)
		}
		if err := rule.CheckID("member", member); err != nil {
			return nil, rerr("invalid_key", "key %q: %v", string(rec.Key), err)
		}
		return &MemberChange{Kind: KindProfiles, Spot: spot, Member: member, Erase: true, TS: noTS}, nil
	}
	if !utf8.Valid(rec.Value) {
		return nil, rerr("invalid_json", "record value is not valid UTF-8")
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(rec.Value, &all); err != nil || all == nil {
		return nil, rerr("invalid_json", "record value is not a JSON object: %v", errText(err))
	}
	env, err := legacyEnvelopeOf(all)
	if err != nil {
		return nil, rerr("invalid_field", "record value: %v", err)
	}
	c := &MemberChange{Kind: rec.Kind}
	for k := range all {
		if !legacyEnvelopeFields[rec.Kind][k] {
			c.Unknown++
		}
	}
	if env.Spot == nil {
		return nil, rerr("missing_field", "missing required field spot")
	}
	if env.Member == nil {
		return nil, rerr("missing_field", "missing required field member")
	}
	if err := rule.CheckKeyID("spot", *env.Spot); err != nil {
		return nil, rerr("invalid_id", "%v", err)
	}
	if err := rule.CheckID("member", *env.Member); err != nil {
		return nil, rerr("invalid_id", "%v", err)
	}
	c.Spot, c.Member = *env.Spot, *env.Member
	if want := c.Spot + "/" + c.Member; string(rec.Key) != want {
		return nil, rerr("key_mismatch", "record key %q does not equal <spot>/<member> %q from its value", string(rec.Key), want)
	}
	if env.TS == nil || legacyIsNull(env.TS) {
		return nil, rerr("missing_field", "missing required field ts")
	}
	var ts rule.Millis
	ts, err = legacyParseTimestamp(env.TS)
	if err != nil {
		return nil, rerr("invalid_field", "ts: %v", err)
	}
	c.TS = ts
	switch rec.Kind {
	case KindProfiles:
		if env.Erase != nil && !legacyIsNull(env.Erase) {
			b, ok := legacyJSONBool(env.Erase)
			if !ok {
				return nil, rerr("invalid_field", "erase: expected true or false")
			}
			if b {
				c.Erase = true
				return c, nil
			}
		}
		if env.Profile == nil || legacyIsNull(env.Profile) {
			return nil, rerr("missing_field", "a profiles record needs a profile object or \"erase\": true")
		}
		pp, unknown, err := legacyValidateProfilePatch(env.Profile, lim)
		if err != nil {
			return nil, rerr("invalid_field", "%v", err)
		}
		c.Profile, c.Unknown = pp, c.Unknown+unknown
	case KindActivities:
		a, err := legacyDecodeActivity(env, ts)
		if err != nil {
			return nil, err
		}
		c.Activity = a
	case KindProperties:
		if (env.Custom == nil || legacyIsNull(env.Custom)) && (env.Form == nil || legacyIsNull(env.Form)) {
			return nil, rerr("missing_field", "a properties record needs a custom or form object")
		}
		var verr *RecordError
		if c.Custom, verr = legacyDecodeValues(env.Custom, "custom", "property", func(id string) (*rule.Schema, bool) { return schemas.Property(c.Spot, id) }); verr != nil {
			return nil, verr
		}
		if c.Form, verr = legacyDecodeValues(env.Form, "form", "question", func(id string) (*rule.Schema, bool) { return schemas.Question(c.Spot, id) }); verr != nil {
			return nil, verr
		}
	default:
		return nil, rerr("unknown_topic", "records of kind %q are not member records", rec.Kind)
	}
	return c, nil
}

func legacyDecodeActivity(env legacyEnvelope, ts rule.Millis) (*rule.Activity, *RecordError) {
	a := &rule.Activity{TS: ts}
	if env.ID != nil && !legacyIsNull(env.ID) {
		id, ok := legacyJSONString(env.ID)
		if !ok {
			return nil, rerr("invalid_field", "id: expected a string")
		}
		if err := rule.CheckID("activity id", id); err != nil {
			return nil, rerr("invalid_id", "%v", err)
		}
		a.ID = id
	}
	t, ok := legacyJSONString(env.Type)
	if !ok {
		return nil, rerr("missing_field", "missing required field type (the activity type)")
	}
	if !slices.Contains(rule.ActivityTypes, t) {
		return nil, rerr("unknown_activity_type", "unknown activity type %q", t)
	}
	a.Type = t
	if env.Resource == nil || legacyIsNull(env.Resource) {
		if rule.ActivityHasResource(t) {
			return nil, rerr("missing_field", "a %s activity needs a resource {id, title}", t)
		}
		return a, nil
	}
	var res struct {
		ID    json.RawMessage `json:"id"`
		Title json.RawMessage `json:"title"`
	}
	if err := decodeExact(env.Resource, &res); err != nil || !bytes.HasPrefix(bytes.TrimSpace(env.Resource), []byte("{")) {
		return nil, rerr("invalid_field", "resource: expected an object {id, title}")
	}
	id, ok := legacyJSONString(res.ID)
	if !ok {
		return nil, rerr("missing_field", "resource.id: expected a string")
	}
	if err := rule.CheckID("resource id", id); err != nil {
		return nil, rerr("invalid_id", "%v", err)
	}
	if res.Title != nil && !legacyIsNull(res.Title) {
		title, ok := legacyJSONString(res.Title)
		if !ok {
			return nil, rerr("invalid_field", "resource.title: expected a string")
		}
		a.Title = title
	}
	a.Resource = id
	return a, nil
}

func legacyDecodeValues(raw json.RawMessage, field, kind string, lookup func(string) (*rule.Schema, bool)) (map[string]json.RawMessage, *RecordError) {
	if raw == nil || legacyIsNull(raw) {
		return nil, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, rerr("invalid_field", "%s: expected an object of %s id to value", field, kind)
	}
	for _, id := range slices.Sorted(maps.Keys(m)) {
		v := m[id]
		if err := rule.CheckID(field+" "+kind+" id", id); err != nil {
			return nil, rerr("invalid_id", "%v", err)
		}
		if legacyIsNull(v) {
			m[id] = nil
			continue
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, v); err == nil {
			m[id] = buf.Bytes()
		}
		s, declared := lookup(id)
		if !declared {
			continue
		}
		if err := legacyFits(s, v); err != nil {
			return nil, rerr("type_mismatch", "%s.%s: %v", field, id, err)
		}
	}
	return m, nil
}

func legacyEnvelopeOf(all map[string]json.RawMessage) (legacyEnvelope, error) {
	env := legacyEnvelope{TS: all["ts"], Erase: all["erase"], Profile: all["profile"], ID: all["id"],
		Type: all["type"], Resource: all["resource"], Custom: all["custom"], Form: all["form"]}
	for _, f := range []struct {
		key string
		dst **string
	}{{"spot", &env.Spot}, {"member", &env.Member}} {
		raw, ok := all[f.key]
		if !ok || legacyIsNull(raw) {
			continue
		}
		s, ok := legacyJSONString(raw)
		if !ok {
			return env, fmt.Errorf("%s: expected a string", f.key)
		}
		*f.dst = &s
	}
	return env, nil
}

func legacyValidateProfilePatch(raw json.RawMessage, lim Limits) (ProfilePatch, int, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, 0, fmt.Errorf("profile must be a JSON object")
	}
	unknown := 0
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		if legacyIsNull(v) {
			if known := slices.Contains(rule.ProfileFields, k); !known && k != "utm" {
				delete(m, k)
				unknown++
			}
			continue
		}
		switch k {
		case "first_name", "last_name", "email", "title", "role", "language":
			if _, ok := legacyJSONString(v); !ok {
				return nil, 0, fmt.Errorf("profile.%s: expected a string", k)
			}
		case "status":
			s, ok := legacyJSONString(v)
			if !ok || !slices.Contains(rule.Statuses, s) {
				return nil, 0, fmt.Errorf("profile.status: %s is not one of accepted, invited, pending, deactivated, unsubscribed, declined, rejected", string(v))
			}
		case "tags":
			ss, ok := legacyJSONStrings(v)
			if !ok {
				return nil, 0, fmt.Errorf("profile.tags: expected an array of strings")
			}
			if len(ss) > lim.MaxTags {
				return nil, 0, fmt.Errorf("profile.tags: %d tags, more than the limit of %d per member (max tags)", len(ss), lim.MaxTags)
			}
		case "static_groups":
			ss, ok := legacyJSONStrings(v)
			if !ok {
				return nil, 0, fmt.Errorf("profile.static_groups: expected an array of group ids")
			}
			for _, s := range ss {
				if err := rule.CheckID("profile.static_groups entry", s); err != nil {
					return nil, 0, err
				}
			}
		case "invited_at", "registered_at", "last_activity_at":
			if _, err := legacyParseTimestamp(v); err != nil {
				return nil, 0, fmt.Errorf("profile.%s: %w", k, err)
			}
		case "utm":
			var u map[string]json.RawMessage
			if err := json.Unmarshal(v, &u); err != nil || u == nil {
				return nil, 0, fmt.Errorf("profile.utm: expected an object")
			}
			for _, uk := range slices.Sorted(maps.Keys(u)) {
				uv := u[uk]
				if !slices.Contains(rule.UTMKeys, uk) {
					delete(u, uk)
					unknown++
					continue
				}
				if legacyIsNull(uv) {
					continue
				}
				if _, ok := legacyJSONString(uv); !ok {
					return nil, 0, fmt.Errorf("profile.utm.%s: expected a string", uk)
				}
			}
			b, _ := json.Marshal(u)
			m[k] = b
		default:
			delete(m, k)
			unknown++
		}
	}
	return ProfilePatch(m), unknown, nil
}

func legacyParseTimestamp(raw json.RawMessage) (rule.Millis, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return 0, errLegacyNotTimestamp
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, errLegacyNotTimestamp
		}
		return legacyParseTimestampString(s)
	}
	return legacyParseEpochMillis(raw)
}

func legacyParseTimestampString(s string) (rule.Millis, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("%q is not an RFC 3339 timestamp with an offset", s)
	}
	return t.UnixMilli(), nil
}

func legacyParseEpochMillis(raw json.RawMessage) (rule.Millis, error) {
	var f json.Number
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&f); err != nil {
		return 0, errLegacyNotTimestamp
	}
	n, err := f.Int64()
	if err != nil {
		return 0, fmt.Errorf("%s is not an integer of epoch milliseconds", string(raw))
	}
	return n, nil
}

func legacyJSONNumber(raw json.RawMessage) (float64, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return 0, false
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

func legacyIsNull(raw json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

func legacyJSONString(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

func legacyJSONStrings(raw json.RawMessage) ([]string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '[' {
		return nil, false
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, false
	}
	ss := make([]string, len(elems))
	for i, e := range elems {
		s, ok := legacyJSONString(e)
		if !ok {
			return nil, false
		}
		ss[i] = s
	}
	return ss, true
}

func legacyJSONBool(raw json.RawMessage) (bool, bool) {
	switch string(bytes.TrimSpace(raw)) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

func legacyFits(s *rule.Schema, raw json.RawMessage) error {
	switch s.Type {
	case rule.TypeText:
		if _, ok := legacyJSONString(raw); !ok {
			return fmt.Errorf("expected a string for %s type text", s.Kind)
		}
	case rule.TypeNumber:
		if _, ok := legacyJSONNumber(raw); !ok {
			return fmt.Errorf("expected a number for %s type number", s.Kind)
		}
	case rule.TypeDate:
		if _, err := legacyParseTimestamp(raw); err != nil {
			return fmt.Errorf("expected a date for %s type date: %w", s.Kind, err)
		}
	case rule.TypeBoolean:
		if _, ok := legacyJSONBool(raw); !ok {
			return fmt.Errorf("expected true or false for %s type boolean", s.Kind)
		}
	case rule.TypeSingleSelect:
		v, ok := legacyJSONString(raw)
		if !ok {
			return fmt.Errorf("expected an option id string for %s type single_select", s.Kind)
		}
		if !s.HasOption(v) {
			return fmt.Errorf("option %q is not declared", v)
		}
	case rule.TypeMultiSelect:
		vs, ok := legacyJSONStrings(raw)
		if !ok {
			return fmt.Errorf("expected an array of option id strings for %s type multi_select", s.Kind)
		}
		for _, v := range vs {
			if !s.HasOption(v) {
				return fmt.Errorf("option %q is not declared", v)
			}
		}
	}
	return nil
}
