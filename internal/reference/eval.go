package reference

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/engine/rule"
)

// evaluator evaluates rules for one member at one instant, written from
// SPEC §3 only.
type evaluator struct {
	m    *Model
	spot string
	id   string
	mem  *member
	now  rule.Millis
}

func (e *evaluator) node(n *rule.Node) bool {
	switch n.Kind {
	case rule.NodeAll:
		for _, c := range n.Children {
			if !e.node(c) {
				return false
			}
		}
		return true // all of nothing is true
	case rule.NodeAny:
		for _, c := range n.Children {
			if e.node(c) {
				return true
			}
		}
		return false // any of nothing is false
	case rule.NodeNot:
		return !e.node(n.Children[0])
	case rule.NodeField:
		return e.field(n)
	case rule.NodeActivity:
		return e.activity(n)
	case rule.NodeGroup:
		return e.group(n)
	}
	panic(oracleError("unknown node kind"))
}

// group is SPEC §3.3.
func (e *evaluator) group(n *rule.Node) bool {
	sd := e.m.defs.Spot(e.spot)
	if sd == nil {
		return false
	}
	g := sd.Groups[n.Group]
	if g == nil {
		return false
	}
	if g.Type == engine.GroupStatic {
		for _, s := range e.mem.profile.StaticGroups {
			if s == n.Group {
				return true
			}
		}
		return false
	}
	return e.m.inSmartGroup(e.spot, n.Group, e.id, e.mem)
}

// activity is SPEC §3.2.
func (e *evaluator) activity(n *rule.Node) bool {
	var count int64
	for _, a := range e.mem.activities {
		if a.Type != n.Activity {
			continue
		}
		if len(n.Resources) > 0 {
			found := false
			for _, r := range n.Resources {
				if r == a.Resource {
					found = true
				}
			}
			if !found {
				continue
			}
		}
		if n.When != nil && !dateTest(n.When.Op, a.TS, n.When.A, n.When.B, e.now) {
			continue
		}
		count++
	}
	op, want := n.CountOp, n.CountN
	if op == "" {
		op, want = "gte", 1
	}
	switch op {
	case "gte":
		return count >= want
	case "lte":
		return count <= want
	case "eq":
		return count == want
	}
	panic(oracleError("unknown count op " + op))
}

// dateTest is the date semantics of SPEC §3.1. For before and after, a is
// the instant; for between, [a, b]; for within_last and more_than_ago, a is
// the duration in milliseconds.
func dateTest(op string, t, a, b, now rule.Millis) bool {
	switch op {
	case "before":
		return t < a
	case "after":
		return t > a
	case "between":
		return a <= t && t <= b
	case "within_last":
		return now-a <= t && t <= now
	case "more_than_ago":
		return t < now-a
	}
	panic(oracleError("unknown date op " + op))
}

// kinds of field values.
const (
	kString = iota + 1
	kStatus
	kTags   // case-insensitive set
	kIDs    // exact set
	kDate   // epoch ms
	kNum    // number
	kBool   // boolean
	kSelect // single_select option id
)

// fieldValue is a member's value of a trigger's field; set is false when the
// field is unset (including an empty set and a kept value that does not fit
// the current type).
type fieldValue struct {
	kind int
	set  bool
	s    string
	t    rule.Millis
	n    float64
	b    bool
	list []string
}

func (e *evaluator) read(field string) fieldValue {
	p := &e.mem.profile
	strPtr := func(s *string) fieldValue {
		if s == nil {
			return fieldValue{kind: kString}
		}
		return fieldValue{kind: kString, set: true, s: *s}
	}
	datePtr := func(t *rule.Millis) fieldValue {
		if t == nil {
			return fieldValue{kind: kDate}
		}
		return fieldValue{kind: kDate, set: true, t: *t}
	}
	switch {
	case strings.HasPrefix(field, "profile.utm."):
		s, ok := p.UTM[strings.TrimPrefix(field, "profile.utm.")]
		return fieldValue{kind: kString, set: ok, s: s}
	case strings.HasPrefix(field, "profile."):
		switch name := strings.TrimPrefix(field, "profile."); name {
		case "first_name":
			return strPtr(p.FirstName)
		case "last_name":
			return strPtr(p.LastName)
		case "email":
			return strPtr(p.Email)
		case "title":
			return strPtr(p.Title)
		case "role":
			return strPtr(p.Role)
		case "language":
			return strPtr(p.Language)
		case "status":
			v := strPtr(p.Status)
			v.kind = kStatus
			return v
		case "tags":
			return fieldValue{kind: kTags, set: len(p.Tags) > 0, list: p.Tags}
		case "static_groups":
			return fieldValue{kind: kIDs, set: len(p.StaticGroups) > 0, list: p.StaticGroups}
		case "invited_at":
			return datePtr(p.InvitedAt)
		case "registered_at":
			return datePtr(p.RegisteredAt)
		case "last_activity_at":
			// Effective value: the later of the profile value and the
			// newest activity ts.
			v := datePtr(p.LastActivityAt)
			for _, a := range e.mem.activities {
				if !v.set || a.TS > v.t {
					v.set, v.t = true, a.TS
				}
			}
			return v
		}
	case strings.HasPrefix(field, "custom."):
		id := strings.TrimPrefix(field, "custom.")
		s, ok := e.m.defs.Property(e.spot, id)
		if !ok {
			panic(oracleError("rule reads undeclared property " + id))
		}
		raw, present := e.mem.custom[id]
		return typed(s, raw, present)
	case strings.HasPrefix(field, "form."):
		id := strings.TrimPrefix(field, "form.")
		s, ok := e.m.defs.Question(e.spot, id)
		if !ok {
			panic(oracleError("rule reads undeclared question " + id))
		}
		raw, present := e.mem.form[id]
		return typed(s, raw, present)
	}
	panic(oracleError("unknown field " + field))
}

// typed interprets a kept raw value under the schema's CURRENT type (SPEC
// §2.3): a value that does not fit is unset; a multi-select value drops
// option ids no longer declared (none left: unset); a single-select value
// that is not a declared option is unset.
func typed(s *rule.Schema, raw json.RawMessage, present bool) fieldValue {
	declared := func(id string) bool {
		for _, o := range s.Options {
			if o.ID == id {
				return true
			}
		}
		return false
	}
	var v fieldValue
	switch s.Type {
	case rule.TypeText:
		v.kind = kString
		if present {
			v.s, v.set = decodeString(raw)
		}
	case rule.TypeNumber:
		v.kind = kNum
		if present {
			v.n, v.set = decodeNumber(raw)
		}
	case rule.TypeDate:
		v.kind = kDate
		if present {
			v.t, v.set = decodeTimestamp(raw)
		}
	case rule.TypeBoolean:
		v.kind = kBool
		if present {
			v.b, v.set = decodeBool(raw)
		}
	case rule.TypeSingleSelect:
		v.kind = kSelect
		if present {
			v.s, v.set = decodeString(raw)
			v.set = v.set && declared(v.s)
		}
	case rule.TypeMultiSelect:
		v.kind = kIDs
		if present {
			if ids, ok := decodeStrings(raw); ok {
				for _, id := range ids {
					if declared(id) {
						v.list = append(v.list, id)
					}
				}
			}
			v.set = len(v.list) > 0
		}
	default:
		panic(oracleError("unknown schema type " + string(s.Type)))
	}
	return v
}

// field is SPEC §3.1.
func (e *evaluator) field(n *rule.Node) bool {
	v := e.read(n.Field)
	switch n.Op {
	case "is_set":
		return v.set
	case "is_not_set":
		return !v.set
	// Negative ops are exactly NOT of their positive op.
	case "neq":
		return !e.positive(v, "eq", n.Value)
	case "not_in":
		return !e.positive(v, "in", n.Value)
	case "not_contains":
		return !e.positive(v, "contains", n.Value)
	case "has_none":
		return !e.positive(v, "has_any", n.Value)
	}
	return e.positive(v, n.Op, n.Value)
}

// positive evaluates a non-negative op; every such op is false on an unset
// field.
func (e *evaluator) positive(v fieldValue, op string, raw json.RawMessage) bool {
	if !v.set {
		return false
	}
	switch v.kind {
	case kString:
		s := fold(v.s)
		switch op {
		case "eq":
			return s == fold(mustString(raw))
		case "in":
			for _, x := range mustStrings(raw) {
				if s == fold(x) {
					return true
				}
			}
			return false
		case "contains":
			return strings.Contains(s, fold(mustString(raw)))
		case "starts_with":
			return strings.HasPrefix(s, fold(mustString(raw)))
		case "ends_with":
			return strings.HasSuffix(s, fold(mustString(raw)))
		}
	case kStatus, kSelect:
		if op == "in" {
			for _, x := range mustStrings(raw) {
				if v.s == x {
					return true
				}
			}
			return false
		}
	case kTags, kIDs:
		norm := func(s string) string { return s }
		if v.kind == kTags {
			norm = fold
		}
		has := func(x string) bool {
			for _, y := range v.list {
				if norm(y) == norm(x) {
					return true
				}
			}
			return false
		}
		want := mustStrings(raw)
		switch op {
		case "has_any":
			for _, x := range want {
				if has(x) {
					return true
				}
			}
			return false
		case "has_all":
			for _, x := range want {
				if !has(x) {
					return false
				}
			}
			return true
		}
	case kNum:
		if op == "between" {
			pair := mustArray(raw, 2)
			lo, ok1 := decodeNumber(pair[0])
			hi, ok2 := decodeNumber(pair[1])
			if !ok1 || !ok2 {
				panic(oracleError("bad between operand " + string(raw)))
			}
			return lo <= v.n && v.n <= hi
		}
		x, ok := decodeNumber(raw)
		if !ok {
			panic(oracleError("bad number operand " + string(raw)))
		}
		switch op {
		case "eq":
			return v.n == x
		case "lt":
			return v.n < x
		case "lte":
			return v.n <= x
		case "gt":
			return v.n > x
		case "gte":
			return v.n >= x
		}
	case kDate:
		switch op {
		case "before", "after":
			return dateTest(op, v.t, mustTimestamp(raw), 0, e.now)
		case "between":
			pair := mustArray(raw, 2)
			return dateTest(op, v.t, mustTimestamp(pair[0]), mustTimestamp(pair[1]), e.now)
		case "within_last", "more_than_ago":
			return dateTest(op, v.t, mustDuration(raw), 0, e.now)
		}
	case kBool:
		switch op {
		case "is_true":
			return v.b
		case "is_false":
			return !v.b
		}
	}
	panic(oracleError("op " + op + " on a field of kind " + strconv.Itoa(v.kind)))
}

// oracleError aborts the evaluation of one (group, member) pair when the
// model meets something SPEC does not allow but the engine's rule compiler
// accepted; Memberships records it (see Problems) and treats the pair as not
// a member.
type oracleError string

// fold maps every rune to the smallest rune of its Unicode simple
// case-folding orbit, so two strings are equal under simple case folding
// exactly when their folds are equal.
func fold(s string) string {
	var b strings.Builder
	for _, r := range s {
		min := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < min {
				min = f
			}
		}
		b.WriteRune(min)
	}
	return b.String()
}

// JSON helpers. Kept member values are read leniently (a mismatch is
// "unset"); rule operands passed the engine's rule compiler, so a mismatch
// there is a bug in the compiler or here, and panics.

func decodeString(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err == nil
}

// decodeStrings decodes a JSON array whose every element is a string.
func decodeStrings(raw json.RawMessage) ([]string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '[' {
		return nil, false
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, false
	}
	out := make([]string, 0, len(elems))
	for _, el := range elems {
		s, ok := decodeString(el)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

func decodeNumber(raw json.RawMessage) (float64, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || !json.Valid(raw) {
		return 0, false
	}
	return f, true
}

func decodeBool(raw json.RawMessage) (bool, bool) {
	switch string(bytes.TrimSpace(raw)) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// decodeTimestamp reads an RFC 3339 string with an offset or an integer of
// epoch milliseconds (SPEC §4), at millisecond resolution (finer fractions
// truncated toward the past).
func decodeTimestamp(raw json.RawMessage) (rule.Millis, bool) {
	raw = bytes.TrimSpace(raw)
	if s, ok := decodeString(raw); ok {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return 0, false
		}
		return t.UnixMilli(), true
	}
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return 0, false
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

func mustString(raw json.RawMessage) string {
	s, ok := decodeString(raw)
	if !ok {
		panic(oracleError("expected a string operand, got " + string(raw)))
	}
	return s
}

func mustStrings(raw json.RawMessage) []string {
	ss, ok := decodeStrings(raw)
	if !ok {
		panic(oracleError("expected an array of strings operand, got " + string(raw)))
	}
	return ss
}

func mustArray(raw json.RawMessage, n int) []json.RawMessage {
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil || len(elems) != n {
		panic(oracleError("expected an array of " + strconv.Itoa(n) + " operands, got " + string(raw)))
	}
	return elems
}

func mustTimestamp(raw json.RawMessage) rule.Millis {
	t, ok := decodeTimestamp(raw)
	if !ok {
		panic(oracleError("expected a timestamp operand, got " + string(raw)))
	}
	return t
}

// mustDuration reads {"days": N} or {"hours": N}; N days = N × 24 h.
func mustDuration(raw json.RawMessage) rule.Millis {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || len(m) != 1 {
		panic(oracleError("expected a duration operand, got " + string(raw)))
	}
	for unit, v := range m {
		n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
		if err != nil {
			f, ok := decodeNumber(v)
			if !ok || f != float64(int64(f)) {
				panic(oracleError("bad duration " + string(raw)))
			}
			n = int64(f)
		}
		switch unit {
		case "days":
			return n * 24 * int64(time.Hour/time.Millisecond)
		case "hours":
			return n * int64(time.Hour/time.Millisecond)
		}
	}
	panic(oracleError("bad duration unit in " + string(raw)))
}
