package engine

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/smartgroups/smartgroups/engine/internal/jsonscan"
	"github.com/smartgroups/smartgroups/engine/rule"
)

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
		return nil, rerr(CodeInvalidKey, "definitions key %q is not <spot>/<kind>/<id>", key)
	}
	d := &DefChange{Spot: parts[0], Kind: parts[1], ID: parts[2], Delete: rec.Tombstone()}
	if err := rule.CheckKeyID("spot", d.Spot); err != nil {
		return nil, rerr(CodeInvalidKey, "key %q: %v", key, err)
	}
	switch d.Kind {
	case "group":
		if err := rule.CheckKeyID("group id", d.ID); err != nil {
			return nil, rerr(CodeInvalidKey, "key %q: %v", key, err)
		}
	case "property", "question":
		if err := rule.CheckID(d.Kind+" id", d.ID); err != nil {
			return nil, rerr(CodeInvalidKey, "key %q: %v", key, err)
		}
	case "blacklist":
		g, m, ok := strings.Cut(d.ID, "/")
		if !ok {
			return nil, rerr(CodeInvalidKey, "blacklist key %q is not <spot>/blacklist/<group>/<member>", key)
		}
		if err := rule.CheckKeyID("group id", g); err != nil {
			return nil, rerr(CodeInvalidKey, "key %q: %v", key, err)
		}
		if err := rule.CheckID("member", m); err != nil {
			return nil, rerr(CodeInvalidKey, "key %q: %v", key, err)
		}
		d.ID, d.Member = g, m
	default:
		return nil, rerr(CodeInvalidKey, "definitions key %q: kind %q is not group, property, question or blacklist", key, d.Kind)
	}
	if d.Delete {
		return d, nil
	}
	if !utf8.Valid(rec.Value) || !json.Valid(rec.Value) || !bytes.HasPrefix(bytes.TrimSpace(rec.Value), []byte("{")) {
		return nil, rerr(CodeInvalidJSON, "definition value is not a JSON object")
	}
	var head struct {
		Kind string `json:"kind"`
		Spot string `json:"spot"`
	}
	if err := decodeExact(rec.Value, &head); err != nil {
		return nil, rerr(CodeInvalidField, "definition: %v", err)
	}
	if head.Kind != d.Kind {
		return nil, rerr(CodeKeyMismatch, "definition kind %q does not match key %q", head.Kind, key)
	}
	if head.Spot != d.Spot {
		return nil, rerr(CodeKeyMismatch, "definition spot %q does not match key %q", head.Spot, key)
	}
	switch d.Kind {
	case "group":
		var g GroupDef
		if err := decodeExact(rec.Value, &g); err != nil {
			return nil, rerr(CodeInvalidField, "group definition: %v", err)
		}
		if g.ID != d.ID {
			return nil, rerr(CodeKeyMismatch, "group id %q does not match key %q", g.ID, key)
		}
		if g.Type != GroupStatic && g.Type != GroupSmart {
			return nil, rerr(CodeInvalidField, "group %q: type must be static or smart, not %q", g.ID, g.Type)
		}
		if len(g.TS) > 0 && !jsonscan.IsNull(g.TS) {
			if _, err := rule.ParseTimestamp(g.TS); err != nil {
				return nil, rerr(CodeInvalidField, "group %q: ts: %v", g.ID, err)
			}
		}
		if strings.TrimSpace(g.Name) == "" {
			return nil, rerr(CodeMissingField, "group %q: name is required", g.ID)
		}
		if g.Type == GroupSmart && (g.Rule == nil || jsonscan.IsNull(g.Rule)) {
			return nil, rerr(CodeMissingField, "smart group %q: rule is required", g.ID)
		}
		if g.Type == GroupStatic && g.Rule != nil && !jsonscan.IsNull(g.Rule) {
			return nil, rerr(CodeInvalidField, "static group %q cannot have a rule", g.ID)
		}
		if g.Type == GroupStatic {
			g.Rule = nil
		}
		if e := checkResources(g.ID, g.Resources); e != nil {
			return nil, e
		}
		d.Group = &g
	case "property", "question":
		var s rule.Schema
		if err := decodeExact(rec.Value, &s); err != nil {
			return nil, rerr(CodeInvalidField, "%s definition: %v", d.Kind, err)
		}
		if s.ID != d.ID {
			return nil, rerr(CodeKeyMismatch, "%s id %q does not match key %q", d.Kind, s.ID, key)
		}
		if err := s.Validate(); err != nil {
			return nil, rerr(CodeInvalidDefinition, "%v", err)
		}
		d.Schema = &s
	case "blacklist":
		var b Blacklist
		if err := decodeExact(rec.Value, &b); err != nil {
			return nil, rerr(CodeInvalidField, "blacklist entry: %v", err)
		}
		if b.Group != d.ID || b.Member != d.Member {
			return nil, rerr(CodeKeyMismatch, "blacklist entry %s/%s does not match key %q", b.Group, b.Member, key)
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
