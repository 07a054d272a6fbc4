package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"
)

// RecordError is why a record was dead-lettered: Code is a short bounded
// class (a metric label), Reason a sentence a person can act on.
type RecordError struct {
	Code   string
	Reason string
}

func (e *RecordError) Error() string { return e.Reason }

func rerr(code, format string, args ...any) *RecordError {
	return &RecordError{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// SchemaLookup finds the declared property and question schemas of a spot.
type SchemaLookup interface {
	Property(spot, id string) (*Schema, bool)
	Question(spot, id string) (*Schema, bool)
}

type envelope struct {
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

var envelopeFields = map[Kind]map[string]bool{
	KindProfiles:   {"spot": true, "member": true, "ts": true, "erase": true, "profile": true},
	KindActivities: {"spot": true, "member": true, "ts": true, "id": true, "type": true, "resource": true},
	KindProperties: {"spot": true, "member": true, "ts": true, "custom": true, "form": true},
}

func checkSize(rec Record, lim Limits) *RecordError {
	if lim.MaxRecordBytes > 0 && len(rec.Value) > lim.MaxRecordBytes {
		return rerr("too_large", "record value is %d bytes, more than the limit of %d bytes (max record bytes)", len(rec.Value), lim.MaxRecordBytes)
	}
	return nil
}

// DecodeMember decodes and validates a record of a member topic. It never
// returns a partly valid change: any error means the whole record is
// dead-lettered.
func DecodeMember(rec Record, lim Limits, schemas SchemaLookup) (*MemberChange, *RecordError) {
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
		if err := checkKeyID("spot", spot); err != nil {
			return nil, rerr("invalid_key", "key %q: %v", string(rec.Key), err)
		}
		if err := checkID("member", member); err != nil {
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
	env, err := envelopeOf(all)
	if err != nil {
		return nil, rerr("invalid_field", "record value: %v", err)
	}
	c := &MemberChange{Kind: rec.Kind}
	for k := range all {
		if !envelopeFields[rec.Kind][k] {
			c.Unknown++
		}
	}
	if env.Spot == nil {
		return nil, rerr("missing_field", "missing required field spot")
	}
	if env.Member == nil {
		return nil, rerr("missing_field", "missing required field member")
	}
	if err := checkKeyID("spot", *env.Spot); err != nil {
		return nil, rerr("invalid_id", "%v", err)
	}
	if err := checkID("member", *env.Member); err != nil {
		return nil, rerr("invalid_id", "%v", err)
	}
	c.Spot, c.Member = *env.Spot, *env.Member
	if want := c.Spot + "/" + c.Member; string(rec.Key) != want {
		return nil, rerr("key_mismatch", "record key %q does not equal <spot>/<member> %q from its value", string(rec.Key), want)
	}
	if env.TS == nil || isNull(env.TS) {
		return nil, rerr("missing_field", "missing required field ts")
	}
	var ts Millis
	ts, err = parseTimestamp(env.TS)
	if err != nil {
		return nil, rerr("invalid_field", "ts: %v", err)
	}
	c.TS = ts
	switch rec.Kind {
	case KindProfiles:
		if env.Erase != nil && !isNull(env.Erase) {
			b, ok := jsonBool(env.Erase)
			if !ok {
				return nil, rerr("invalid_field", "erase: expected true or false")
			}
			if b {
				c.Erase = true
				return c, nil
			}
		}
		if env.Profile == nil || isNull(env.Profile) {
			return nil, rerr("missing_field", "a profiles record needs a profile object or \"erase\": true")
		}
		pp, unknown, err := validateProfilePatch(env.Profile, lim)
		if err != nil {
			return nil, rerr("invalid_field", "%v", err)
		}
		c.Profile, c.Unknown = pp, c.Unknown+unknown
	case KindActivities:
		a, err := decodeActivity(env, ts)
		if err != nil {
			return nil, err
		}
		c.Activity = a
	case KindProperties:
		if (env.Custom == nil || isNull(env.Custom)) && (env.Form == nil || isNull(env.Form)) {
			return nil, rerr("missing_field", "a properties record needs a custom or form object")
		}
		var verr *RecordError
		if c.Custom, verr = decodeValues(env.Custom, "custom", "property", func(id string) (*Schema, bool) { return schemas.Property(c.Spot, id) }); verr != nil {
			return nil, verr
		}
		if c.Form, verr = decodeValues(env.Form, "form", "question", func(id string) (*Schema, bool) { return schemas.Question(c.Spot, id) }); verr != nil {
			return nil, verr
		}
	default:
		return nil, rerr("unknown_topic", "records of kind %q are not member records", rec.Kind)
	}
	return c, nil
}

// noTS marks an erase from a tombstone, which carries no timestamp.
const noTS = Millis(-1 << 62)

func errText(err error) string {
	if err == nil {
		return "null"
	}
	return err.Error()
}

func decodeActivity(env envelope, ts Millis) (*Activity, *RecordError) {
	a := &Activity{TS: ts}
	if env.ID != nil && !isNull(env.ID) {
		id, ok := jsonString(env.ID)
		if !ok {
			return nil, rerr("invalid_field", "id: expected a string")
		}
		if err := checkID("activity id", id); err != nil {
			return nil, rerr("invalid_id", "%v", err)
		}
		a.ID = id
	}
	t, ok := jsonString(env.Type)
	if !ok {
		return nil, rerr("missing_field", "missing required field type (the activity type)")
	}
	if !activityTypeSet[t] {
		return nil, rerr("unknown_activity_type", "unknown activity type %q", t)
	}
	a.Type = t
	if env.Resource == nil || isNull(env.Resource) {
		if activityHasResource(t) {
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
	id, ok := jsonString(res.ID)
	if !ok {
		return nil, rerr("missing_field", "resource.id: expected a string")
	}
	if err := checkID("resource id", id); err != nil {
		return nil, rerr("invalid_id", "%v", err)
	}
	if res.Title != nil && !isNull(res.Title) {
		title, ok := jsonString(res.Title)
		if !ok {
			return nil, rerr("invalid_field", "resource.title: expected a string")
		}
		a.Title = title
	}
	a.Resource = id
	return a, nil
}

func decodeValues(raw json.RawMessage, field, kind string, lookup func(string) (*Schema, bool)) (map[string]json.RawMessage, *RecordError) {
	if raw == nil || isNull(raw) {
		return nil, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, rerr("invalid_field", "%s: expected an object of %s id to value", field, kind)
	}
	for _, id := range sortedKeys(m) {
		v := m[id]
		if err := checkID(field+" "+kind+" id", id); err != nil {
			return nil, rerr("invalid_id", "%v", err)
		}
		if isNull(v) {
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
		if err := s.fits(v); err != nil {
			return nil, rerr("type_mismatch", "%s.%s: %v", field, id, err)
		}
	}
	return m, nil
}

// DefChange is a decoded definitions record (SPEC §4.1), syntactically
// valid; whether it may be applied depends on the current definitions.
type DefChange struct {
	Spot   string
	Kind   string // group, property, question, blacklist
	ID     string // group, property or question id; the group of a blacklist entry
	Member string // blacklist entries only
	Delete bool

	Group     *GroupDef
	Schema    *Schema
	Blacklist *Blacklist
}

// DecodeDefinition decodes a definitions record.
func DecodeDefinition(rec Record, lim Limits) (*DefChange, *RecordError) {
	if e := checkSize(rec, lim); e != nil {
		return nil, e
	}
	key := string(rec.Key)
	parts := strings.SplitN(key, "/", 3)
	if len(parts) != 3 {
		return nil, rerr("invalid_key", "definitions key %q is not <spot>/<kind>/<id>", key)
	}
	d := &DefChange{Spot: parts[0], Kind: parts[1], ID: parts[2], Delete: rec.Tombstone()}
	if err := checkKeyID("spot", d.Spot); err != nil {
		return nil, rerr("invalid_key", "key %q: %v", key, err)
	}
	switch d.Kind {
	case "group":
		if err := checkKeyID("group id", d.ID); err != nil {
			return nil, rerr("invalid_key", "key %q: %v", key, err)
		}
	case "property", "question":
		if err := checkID(d.Kind+" id", d.ID); err != nil {
			return nil, rerr("invalid_key", "key %q: %v", key, err)
		}
	case "blacklist":
		g, m, ok := strings.Cut(d.ID, "/")
		if !ok {
			return nil, rerr("invalid_key", "blacklist key %q is not <spot>/blacklist/<group>/<member>", key)
		}
		if err := checkKeyID("group id", g); err != nil {
			return nil, rerr("invalid_key", "key %q: %v", key, err)
		}
		if err := checkID("member", m); err != nil {
			return nil, rerr("invalid_key", "key %q: %v", key, err)
		}
		d.ID, d.Member = g, m
	default:
		return nil, rerr("invalid_key", "definitions key %q: kind %q is not group, property, question or blacklist", key, d.Kind)
	}
	if d.Delete {
		return d, nil
	}
	if !utf8.Valid(rec.Value) || !json.Valid(rec.Value) || !bytes.HasPrefix(bytes.TrimSpace(rec.Value), []byte("{")) {
		return nil, rerr("invalid_json", "definition value is not a JSON object")
	}
	var head struct {
		Kind string `json:"kind"`
		Spot string `json:"spot"`
	}
	if err := decodeExact(rec.Value, &head); err != nil {
		return nil, rerr("invalid_field", "definition: %v", err)
	}
	if head.Kind != d.Kind {
		return nil, rerr("key_mismatch", "definition kind %q does not match key %q", head.Kind, key)
	}
	if head.Spot != d.Spot {
		return nil, rerr("key_mismatch", "definition spot %q does not match key %q", head.Spot, key)
	}
	switch d.Kind {
	case "group":
		var g GroupDef
		if err := decodeExact(rec.Value, &g); err != nil {
			return nil, rerr("invalid_field", "group definition: %v", err)
		}
		if g.ID != d.ID {
			return nil, rerr("key_mismatch", "group id %q does not match key %q", g.ID, key)
		}
		if g.Type != GroupStatic && g.Type != GroupSmart {
			return nil, rerr("invalid_field", "group %q: type must be static or smart, not %q", g.ID, g.Type)
		}
		if len(g.TS) > 0 && !isNull(g.TS) {
			if _, err := parseTimestamp(g.TS); err != nil {
				return nil, rerr("invalid_field", "group %q: ts: %v", g.ID, err)
			}
		}
		if strings.TrimSpace(g.Name) == "" {
			return nil, rerr("missing_field", "group %q: name is required", g.ID)
		}
		if g.Type == GroupSmart && (g.Rule == nil || isNull(g.Rule)) {
			return nil, rerr("missing_field", "smart group %q: rule is required", g.ID)
		}
		if g.Type == GroupStatic && g.Rule != nil && !isNull(g.Rule) {
			return nil, rerr("invalid_field", "static group %q cannot have a rule", g.ID)
		}
		if g.Type == GroupStatic {
			g.Rule = nil
		}
		d.Group = &g
	case "property", "question":
		var s Schema
		if err := decodeExact(rec.Value, &s); err != nil {
			return nil, rerr("invalid_field", "%s definition: %v", d.Kind, err)
		}
		if s.ID != d.ID {
			return nil, rerr("key_mismatch", "%s id %q does not match key %q", d.Kind, s.ID, key)
		}
		if err := s.validate(); err != nil {
			return nil, rerr("invalid_definition", "%v", err)
		}
		d.Schema = &s
	case "blacklist":
		var b Blacklist
		if err := decodeExact(rec.Value, &b); err != nil {
			return nil, rerr("invalid_field", "blacklist entry: %v", err)
		}
		if b.Group != d.ID || b.Member != d.Member {
			return nil, rerr("key_mismatch", "blacklist entry %s/%s does not match key %q", b.Group, b.Member, key)
		}
		d.Blacklist = &b
	}
	return d, nil
}

// envelopeOf picks the envelope fields by their exact names (encoding/json
// would also match "SPOT" or "Profile").
func envelopeOf(all map[string]json.RawMessage) (envelope, error) {
	env := envelope{TS: all["ts"], Erase: all["erase"], Profile: all["profile"], ID: all["id"],
		Type: all["type"], Resource: all["resource"], Custom: all["custom"], Form: all["form"]}
	for _, f := range []struct {
		key string
		dst **string
	}{{"spot", &env.Spot}, {"member", &env.Member}} {
		raw, ok := all[f.key]
		if !ok || isNull(raw) {
			continue
		}
		s, ok := jsonString(raw)
		if !ok {
			return env, fmt.Errorf("%s: expected a string", f.key)
		}
		*f.dst = &s
	}
	return env, nil
}

// decodeExact decodes a JSON object into a struct, matching field names
// exactly (encoding/json alone ignores case): keys that are not one of the
// struct's JSON names are dropped before decoding.
func decodeExact(raw []byte, dst any) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return err
	}
	names := jsonNames(reflect.TypeOf(dst).Elem())
	for k := range m {
		if !names[k] {
			delete(m, k)
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, dst)
}

var jsonNamesCache sync.Map // reflect.Type -> map[string]bool

func jsonNames(t reflect.Type) map[string]bool {
	if v, ok := jsonNamesCache.Load(t); ok {
		return v.(map[string]bool)
	}
	names := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names[name] = true
	}
	jsonNamesCache.Store(t, names)
	return names
}
