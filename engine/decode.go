package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/smartgroups/smartgroups/engine/internal/jsonscan"
	"github.com/smartgroups/smartgroups/engine/rule"
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
	Property(spot, id string) (*rule.Schema, bool)
	Question(spot, id string) (*rule.Schema, bool)
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
	env, unknown, ok := readEnvelope(rec.Value, rec.Kind)
	if !ok {
		// The reason names what encoding/json finds wrong.
		var all map[string]json.RawMessage
		err := json.Unmarshal(rec.Value, &all)
		return nil, rerr("invalid_json", "record value is not a JSON object: %v", errText(err))
	}
	spot, member := env[envSpot], env[envMember]
	if !spot.AbsentOrNull() && spot.Kind != jsonscan.Str {
		return nil, rerr("invalid_field", "record value: spot: expected a string")
	}
	if !member.AbsentOrNull() && member.Kind != jsonscan.Str {
		return nil, rerr("invalid_field", "record value: member: expected a string")
	}
	if spot.AbsentOrNull() {
		return nil, rerr("missing_field", "missing required field spot")
	}
	if member.AbsentOrNull() {
		return nil, rerr("missing_field", "missing required field member")
	}
	sb, mb := stringBytes(spot), stringBytes(member)
	if err := checkIDBytes("spot", sb, true); err != nil {
		return nil, rerr("invalid_id", "%v", err)
	}
	if err := checkIDBytes("member", mb, false); err != nil {
		return nil, rerr("invalid_id", "%v", err)
	}
	key := rec.Key
	if len(key) != len(sb)+1+len(mb) || !bytes.HasPrefix(key, sb) || key[len(sb)] != '/' || !bytes.HasSuffix(key, mb) {
		return nil, rerr("key_mismatch", "record key %q does not equal <spot>/<member> %q from its value", string(rec.Key), string(sb)+"/"+string(mb))
	}
	// The key is <spot>/<member>: one string holds both.
	ks := string(key)
	c := &MemberChange{Kind: rec.Kind, Spot: ks[:len(sb)], Member: ks[len(sb)+1:], Unknown: unknown}
	if env[envTS].AbsentOrNull() {
		return nil, rerr("missing_field", "missing required field ts")
	}
	ts, err := rule.ParseTimestamp(env[envTS].Bytes)
	if err != nil {
		return nil, rerr("invalid_field", "ts: %v", err)
	}
	c.TS = ts
	switch rec.Kind {
	case KindProfiles:
		if e := env[envErase]; !e.AbsentOrNull() {
			if e.Kind != jsonscan.True && e.Kind != jsonscan.False {
				return nil, rerr("invalid_field", "erase: expected true or false")
			}
			if e.Kind == jsonscan.True {
				c.Erase = true
				return c, nil
			}
		}
		if env[envProfile].AbsentOrNull() {
			return nil, rerr("missing_field", "a profiles record needs a profile object or \"erase\": true")
		}
		pp, unknown, err := validateProfilePatch(env[envProfile], lim)
		if err != nil {
			return nil, rerr("invalid_field", "%v", err)
		}
		c.Profile, c.Unknown = pp, c.Unknown+unknown
	case KindActivities:
		a, err := decodeActivity(&env, ts)
		if err != nil {
			return nil, err
		}
		c.Activity = a
	case KindProperties:
		if env[envCustom].AbsentOrNull() && env[envForm].AbsentOrNull() {
			return nil, rerr("missing_field", "a properties record needs a custom or form object")
		}
		var verr *RecordError
		if c.Custom, verr = decodeValues(env[envCustom], "custom", "property", c.Spot, schemas); verr != nil {
			return nil, verr
		}
		if c.Form, verr = decodeValues(env[envForm], "form", "question", c.Spot, schemas); verr != nil {
			return nil, verr
		}
	default:
		return nil, rerr("unknown_topic", "records of kind %q are not member records", rec.Kind)
	}
	return c, nil
}

// noTS marks an erase from a tombstone, which carries no timestamp.
const noTS = rule.Millis(-1 << 62)

func errText(err error) string {
	if err == nil {
		return "null"
	}
	return err.Error()
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
	Schema    *rule.Schema
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
	if err := rule.CheckKeyID("spot", d.Spot); err != nil {
		return nil, rerr("invalid_key", "key %q: %v", key, err)
	}
	switch d.Kind {
	case "group":
		if err := rule.CheckKeyID("group id", d.ID); err != nil {
			return nil, rerr("invalid_key", "key %q: %v", key, err)
		}
	case "property", "question":
		if err := rule.CheckID(d.Kind+" id", d.ID); err != nil {
			return nil, rerr("invalid_key", "key %q: %v", key, err)
		}
	case "blacklist":
		g, m, ok := strings.Cut(d.ID, "/")
		if !ok {
			return nil, rerr("invalid_key", "blacklist key %q is not <spot>/blacklist/<group>/<member>", key)
		}
		if err := rule.CheckKeyID("group id", g); err != nil {
			return nil, rerr("invalid_key", "key %q: %v", key, err)
		}
		if err := rule.CheckID("member", m); err != nil {
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
		if len(g.TS) > 0 && !jsonscan.IsNull(g.TS) {
			if _, err := rule.ParseTimestamp(g.TS); err != nil {
				return nil, rerr("invalid_field", "group %q: ts: %v", g.ID, err)
			}
		}
		if strings.TrimSpace(g.Name) == "" {
			return nil, rerr("missing_field", "group %q: name is required", g.ID)
		}
		if g.Type == GroupSmart && (g.Rule == nil || jsonscan.IsNull(g.Rule)) {
			return nil, rerr("missing_field", "smart group %q: rule is required", g.ID)
		}
		if g.Type == GroupStatic && g.Rule != nil && !jsonscan.IsNull(g.Rule) {
			return nil, rerr("invalid_field", "static group %q cannot have a rule", g.ID)
		}
		if g.Type == GroupStatic {
			g.Rule = nil
		}
		d.Group = &g
	case "property", "question":
		var s rule.Schema
		if err := decodeExact(rec.Value, &s); err != nil {
			return nil, rerr("invalid_field", "%s definition: %v", d.Kind, err)
		}
		if s.ID != d.ID {
			return nil, rerr("key_mismatch", "%s id %q does not match key %q", d.Kind, s.ID, key)
		}
		if err := s.Validate(); err != nil {
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
