package engine

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/smartgroups/smartgroups/engine/internal/jsonscan"
	"github.com/smartgroups/smartgroups/engine/rule"
)

// Member records are read without encoding/json (engine/internal/jsonscan): one scan
// checks the whole value and finds the envelope's fields, and the objects
// that are decoded (profile, resource, custom, form) are walked again. Keys
// are matched by their exact names, the last of duplicate keys wins and keys
// with escapes are decoded first, all as encoding/json does for a
// map[string]json.RawMessage. Values that are kept (profile fields, custom
// values, form answers) are copies of the record's bytes, compacted where
// encoding/json compacted them; one buffer per map holds them, and nothing
// refers into the record.

// envField is a field of a member record's envelope.
type envField uint8

const (
	envSpot envField = iota
	envMember
	envTS
	envErase
	envProfile
	envID
	envType
	envResource
	envCustom
	envForm
	numEnvFields
)

func envelopeField(key []byte) (envField, bool) {
	switch string(key) {
	case "spot":
		return envSpot, true
	case "member":
		return envMember, true
	case "ts":
		return envTS, true
	case "erase":
		return envErase, true
	case "profile":
		return envProfile, true
	case "id":
		return envID, true
	case "type":
		return envType, true
	case "resource":
		return envResource, true
	case "custom":
		return envCustom, true
	case "form":
		return envForm, true
	}
	return 0, false
}

// kindFields is the set of envelope fields each member topic defines
// (a bit per envField); other keys are unknown and counted.
func kindFields(k Kind) uint16 {
	const common = 1<<envSpot | 1<<envMember | 1<<envTS
	switch k {
	case KindProfiles:
		return common | 1<<envErase | 1<<envProfile
	case KindActivities:
		return common | 1<<envID | 1<<envType | 1<<envResource
	case KindProperties:
		return common | 1<<envCustom | 1<<envForm
	}
	return 0
}

// envelope holds the values of a record's envelope fields (absent ones
// have nil bytes).
type envelope [numEnvFields]jsonscan.Value

// readEnvelope reads a record value that must be one JSON object (ok is
// false otherwise) and counts its distinct keys that kind does not define.
func readEnvelope(value []byte, kind Kind) (env envelope, unknown int, ok bool) {
	i := jsonscan.SkipSpace(value, 0)
	if i >= len(value) || value[i] != '{' {
		return env, 0, false
	}
	known := kindFields(kind)
	var seen uint16
	var others keySet
	it := jsonscan.Object(value, i, 1)
	for {
		key, v, ok := it.NextKey()
		if !ok {
			break
		}
		if f, ok := envelopeField(key); ok {
			env[f] = v
			if bit := uint16(1) << f; seen&bit == 0 {
				seen |= bit
				if known&bit == 0 {
					unknown++
				}
			}
			continue
		}
		if others.add(key) {
			unknown++
		}
	}
	if it.Bad() || jsonscan.SkipSpace(value, it.Pos()) != len(value) {
		return env, 0, false
	}
	return env, unknown, true
}

// keySet tells keys seen before from new ones. Records have few unknown
// keys, so they are compared in a list until there are many.
type keySet struct {
	list [][]byte
	m    map[string]struct{}
}

const keySetListMax = 16

// add reports whether key is new.
func (s *keySet) add(key []byte) bool {
	if s.m != nil {
		if _, ok := s.m[string(key)]; ok {
			return false
		}
		s.m[string(key)] = struct{}{}
		return true
	}
	for _, k := range s.list {
		if bytes.Equal(k, key) {
			return false
		}
	}
	if len(s.list) < keySetListMax {
		s.list = append(s.list, key)
		return true
	}
	s.m = make(map[string]struct{}, 2*keySetListMax)
	for _, k := range s.list {
		s.m[string(k)] = struct{}{}
	}
	s.m[string(key)] = struct{}{}
	s.list = nil
	return true
}

// stringBytes returns the decoded bytes of v, a JSON string of a record
// whose UTF-8 is valid.
func stringBytes(v jsonscan.Value) []byte {
	if p, ok := v.Plain(); ok {
		return p
	}
	s, _ := jsonscan.DecodeString(v.Bytes)
	return []byte(s)
}

// checkIDBytes is checkID (checkKeyID when keySegment) of an id still in
// bytes.
func checkIDBytes(what string, id []byte, keySegment bool) error {
	if len(id) > 0 && len(id) <= rule.MaxIDBytes && utf8.Valid(id) && bytes.IndexByte(id, 0) < 0 &&
		(!keySegment || bytes.IndexByte(id, '/') < 0) {
		return nil
	}
	if keySegment {
		return rule.CheckKeyID(what, string(id))
	}
	return rule.CheckID(what, string(id))
}

// activityTypeName returns the activity type named t.
func activityTypeName(t []byte) (string, bool) {
	for _, name := range rule.ActivityTypes {
		if string(t) == name {
			return name, true
		}
	}
	return "", false
}

func decodeActivity(env *envelope, ts rule.Millis) (*rule.Activity, *RecordError) {
	a := &rule.Activity{TS: ts}
	if id := env[envID]; !id.AbsentOrNull() {
		if id.Kind != jsonscan.Str {
			return nil, rerr(CodeInvalidField, "id: expected a string")
		}
		b := stringBytes(id)
		if err := checkIDBytes("activity id", b, false); err != nil {
			return nil, rerr(CodeInvalidID, "%v", err)
		}
		a.ID = string(b)
	}
	if env[envType].Kind != jsonscan.Str {
		return nil, rerr(CodeMissingField, "missing required field type (the activity type)")
	}
	tb := stringBytes(env[envType])
	t, ok := activityTypeName(tb)
	if !ok {
		return nil, rerr(CodeUnknownActivityType, "unknown activity type %q", string(tb))
	}
	a.Type = t
	res := env[envResource]
	if res.AbsentOrNull() {
		if rule.ActivityHasResource(t) {
			return nil, rerr(CodeMissingField, "a %s activity needs a resource {id, title}", t)
		}
		return a, nil
	}
	if res.Kind != jsonscan.Obj {
		return nil, rerr(CodeInvalidField, "resource: expected an object {id, title}")
	}
	var id, title jsonscan.Value
	it := res.Members()
	for {
		key, v, ok := it.NextKey()
		if !ok {
			break
		}
		switch string(key) {
		case "id":
			id = v
		case "title":
			title = v
		}
	}
	if id.Kind != jsonscan.Str {
		return nil, rerr(CodeMissingField, "resource.id: expected a string")
	}
	idb := stringBytes(id)
	if err := checkIDBytes("resource id", idb, false); err != nil {
		return nil, rerr(CodeInvalidID, "%v", err)
	}
	if !title.AbsentOrNull() {
		if title.Kind != jsonscan.Str {
			return nil, rerr(CodeInvalidField, "resource.title: expected a string")
		}
		a.Title = string(stringBytes(title))
	}
	a.Resource = string(idb)
	return a, nil
}

// decodeValues decodes the custom (field "custom", kind "property") or form
// (field "form", kind "question") values of a properties record: id to
// compacted value, nil for JSON null. Values of declared ids must fit their
// schema.
func decodeValues(v jsonscan.Value, field, kind, spot string, schemas SchemaLookup) (map[string]json.RawMessage, *RecordError) {
	if v.AbsentOrNull() {
		return nil, nil
	}
	if v.Kind != jsonscan.Obj {
		return nil, rerr(CodeInvalidField, "%s: expected an object of %s id to value", field, kind)
	}
	type member struct {
		id []byte
		v  jsonscan.Value
	}
	var buf [16]member
	members := buf[:0]
	idBytes, valBytes := 0, 0
	it := v.Members()
	for {
		key, mv, ok := it.NextKey()
		if !ok {
			break
		}
		members = append(members, member{key, mv})
		idBytes += len(key)
		if mv.Kind != jsonscan.Null {
			valBytes += len(mv.Bytes)
		}
	}
	// One string holds the ids, one buffer the values.
	var sb strings.Builder
	sb.Grow(idBytes)
	for _, m := range members {
		sb.Write(m.id)
	}
	ids := sb.String()
	vals := make([]byte, 0, valBytes)
	out := make(map[string]json.RawMessage, len(members))
	off := 0
	for _, m := range members {
		id := ids[off : off+len(m.id)]
		off += len(m.id)
		if m.v.Kind == jsonscan.Null {
			out[id] = nil
			continue
		}
		start := len(vals)
		vals = jsonscan.AppendCompact(vals, m.v.Bytes)
		out[id] = vals[start:len(vals):len(vals)]
	}
	// The fault reported is that of the least id, whatever the order of
	// the object's keys.
	var bad *RecordError
	badID := ""
	for id, raw := range out {
		if bad != nil && id >= badID {
			continue
		}
		if !idOK(id) {
			if err := rule.CheckID(field+" "+kind+" id", id); err != nil {
				bad, badID = rerr(CodeInvalidID, "%v", err), id
				continue
			}
		}
		if raw == nil {
			continue
		}
		var s *rule.Schema
		var declared bool
		if kind == "property" {
			s, declared = schemas.Property(spot, id)
		} else {
			s, declared = schemas.Question(spot, id)
		}
		if !declared {
			continue
		}
		if err := s.Fits(raw); err != nil {
			bad, badID = rerr(CodeTypeMismatch, "%s.%s: %v", field, id, err), id
		}
	}
	if bad != nil {
		return nil, bad
	}
	return out, nil
}

// idOK reports whether checkID accepts id.
func idOK(id string) bool {
	return len(id) > 0 && len(id) <= rule.MaxIDBytes && utf8.ValidString(id) && strings.IndexByte(id, 0) < 0
}

// SchemaLookup finds the declared property and question schemas of a spot.
type SchemaLookup interface {
	Property(spot, id string) (*rule.Schema, bool)
	Question(spot, id string) (*rule.Schema, bool)
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
			return nil, rerr(CodeInvalidRecord, "a null value only erases a member on the profiles topic; on %s it means nothing", rec.Kind)
		}
		spot, member, ok := strings.Cut(string(rec.Key), "/")
		if !ok {
			return nil, rerr(CodeInvalidKey, "a null value erases the member named by the key <spot>/<member>, but key %q has no '/'", string(rec.Key))
		}
		if err := rule.CheckKeyID("spot", spot); err != nil {
			return nil, rerr(CodeInvalidKey, "key %q: %v", string(rec.Key), err)
		}
		if err := rule.CheckID("member", member); err != nil {
			return nil, rerr(CodeInvalidKey, "key %q: %v", string(rec.Key), err)
		}
		return &MemberChange{Kind: KindProfiles, Spot: spot, Member: member, Erase: true, TS: noTS}, nil
	}
	if !utf8.Valid(rec.Value) {
		return nil, rerr(CodeInvalidJSON, "record value is not valid UTF-8")
	}
	env, unknown, ok := readEnvelope(rec.Value, rec.Kind)
	if !ok {
		// The reason names what encoding/json finds wrong.
		var all map[string]json.RawMessage
		err := json.Unmarshal(rec.Value, &all)
		return nil, rerr(CodeInvalidJSON, "record value is not a JSON object: %v", errText(err))
	}
	spot, member := env[envSpot], env[envMember]
	if !spot.AbsentOrNull() && spot.Kind != jsonscan.Str {
		return nil, rerr(CodeInvalidField, "record value: spot: expected a string")
	}
	if !member.AbsentOrNull() && member.Kind != jsonscan.Str {
		return nil, rerr(CodeInvalidField, "record value: member: expected a string")
	}
	if spot.AbsentOrNull() {
		return nil, rerr(CodeMissingField, "missing required field spot")
	}
	if member.AbsentOrNull() {
		return nil, rerr(CodeMissingField, "missing required field member")
	}
	sb, mb := stringBytes(spot), stringBytes(member)
	if err := checkIDBytes("spot", sb, true); err != nil {
		return nil, rerr(CodeInvalidID, "%v", err)
	}
	if err := checkIDBytes("member", mb, false); err != nil {
		return nil, rerr(CodeInvalidID, "%v", err)
	}
	key := rec.Key
	if len(key) != len(sb)+1+len(mb) || !bytes.HasPrefix(key, sb) || key[len(sb)] != '/' || !bytes.HasSuffix(key, mb) {
		return nil, rerr(CodeKeyMismatch, "record key %q does not equal <spot>/<member> %q from its value", string(rec.Key), string(sb)+"/"+string(mb))
	}
	// The key is <spot>/<member>: one string holds both.
	ks := string(key)
	c := &MemberChange{Kind: rec.Kind, Spot: ks[:len(sb)], Member: ks[len(sb)+1:], Unknown: unknown}
	if env[envTS].AbsentOrNull() {
		return nil, rerr(CodeMissingField, "missing required field ts")
	}
	ts, err := rule.ParseTimestamp(env[envTS].Bytes)
	if err != nil {
		return nil, rerr(CodeInvalidField, "ts: %v", err)
	}
	c.TS = ts
	switch rec.Kind {
	case KindProfiles:
		if e := env[envErase]; !e.AbsentOrNull() {
			if e.Kind != jsonscan.True && e.Kind != jsonscan.False {
				return nil, rerr(CodeInvalidField, "erase: expected true or false")
			}
			if e.Kind == jsonscan.True {
				c.Erase = true
				return c, nil
			}
		}
		if env[envProfile].AbsentOrNull() {
			return nil, rerr(CodeMissingField, "a profiles record needs a profile object or \"erase\": true")
		}
		pp, unknown, err := validateProfilePatch(env[envProfile], lim)
		if err != nil {
			return nil, rerr(CodeInvalidField, "%v", err)
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
			return nil, rerr(CodeMissingField, "a properties record needs a custom or form object")
		}
		var verr *RecordError
		if c.Custom, verr = decodeValues(env[envCustom], "custom", "property", c.Spot, schemas); verr != nil {
			return nil, verr
		}
		if c.Form, verr = decodeValues(env[envForm], "form", "question", c.Spot, schemas); verr != nil {
			return nil, verr
		}
	default:
		return nil, rerr(CodeUnknownTopic, "records of kind %q are not member records", rec.Kind)
	}
	return c, nil
}

func errText(err error) string {
	if err == nil {
		return "null"
	}
	return err.Error()
}

// MemberChange is a decoded, validated member record.
type MemberChange struct {
	Kind     Kind
	Spot     string
	Member   string
	TS       rule.Millis
	Erase    bool
	Profile  ProfilePatch
	Activity *rule.Activity
	Custom   map[string]json.RawMessage // id -> value, null clears
	Form     map[string]json.RawMessage
	// Unknown counts fields that were ignored.
	Unknown int
}
