package rule

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/smartgroups/smartgroups/engine/internal/jsonscan"
)

var profileFieldTypes = map[string]fieldType{
	"first_name": ftString, "last_name": ftString, "email": ftString, "title": ftString,
	"status": ftStatus, "role": ftString, "tags": ftTags, "language": ftString,
	"invited_at": ftDate, "registered_at": ftDate, "last_activity_at": ftDate,
	"static_groups": ftIDSet,
}

var utmKeys = map[string]bool{"source": true, "medium": true, "campaign": true, "term": true, "content": true}

// ProfileFields are the profile fields a trigger can read, sorted (the
// utm object is read by key: UTMKeys).
var ProfileFields = slices.Sorted(maps.Keys(profileFieldTypes))

// UTMKeys are the keys of profile.utm a trigger can read, sorted.
var UTMKeys = slices.Sorted(maps.Keys(utmKeys))

// CompileRule parses and type-checks a rule against a spot's catalog.
func CompileRule(raw json.RawMessage, cat Catalog, lim Limits) (*Rule, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, fmt.Errorf("rule is not valid JSON: %w", err)
	}
	c := &compiler{cat: cat, lim: lim, rule: &Rule{Options: map[string][]string{}}, deps: map[string]bool{}}
	root, err := c.node(buf.Bytes(), "rule", 1)
	if err != nil {
		return nil, err
	}
	r := c.rule
	r.Root = root
	r.Canonical = buf.String()
	for d := range c.deps {
		r.Deps = append(r.Deps, d)
	}
	slices.Sort(r.Deps)
	for _, l := range [][]string{r.Tags, r.Properties, r.Questions, r.Groups, r.StaticGroups} {
		slices.Sort(l)
	}
	r.Tags, r.Properties, r.Questions = slices.Compact(r.Tags), slices.Compact(r.Properties), slices.Compact(r.Questions)
	r.Groups, r.StaticGroups = slices.Compact(r.Groups), slices.Compact(r.StaticGroups)
	for k, v := range r.Options {
		slices.Sort(v)
		r.Options[k] = slices.Compact(v)
	}
	r.timeLeaves, r.compiled = appendTimeLeaves(nil, root), true
	return r, nil
}

// appendTimeLeaves appends the time-dependent triggers of a tree.
func appendTimeLeaves(out []*Node, n *Node) []*Node {
	if n.TimeDependent() {
		return append(out, n)
	}
	for _, c := range n.Children {
		out = appendTimeLeaves(out, c)
	}
	return out
}

type compiler struct {
	cat  Catalog
	lim  Limits
	rule *Rule
	deps map[string]bool
}

func (c *compiler) node(raw json.RawMessage, path string, depth int) (*Node, error) {
	if depth > c.lim.MaxRuleDepth {
		return nil, fmt.Errorf("%s: rule is deeper than the limit of %d levels (max rule depth)", path, c.lim.MaxRuleDepth)
	}
	c.rule.Nodes++
	if c.rule.Nodes > c.lim.MaxRuleNodes {
		return nil, fmt.Errorf("rule has more than the limit of %d nodes (max rule nodes)", c.lim.MaxRuleNodes)
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, fmt.Errorf("%s: a rule node must be a JSON object", path)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	only := func(allowed ...string) error {
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			if !slices.Contains(allowed, k) {
				return fmt.Errorf("%s: unexpected key %q", path, k)
			}
		}
		return nil
	}
	switch {
	case obj["all"] != nil || obj["any"] != nil:
		key, kind := "all", NodeAll
		if obj["any"] != nil {
			key, kind = "any", NodeAny
		}
		if err := only(key); err != nil {
			return nil, err
		}
		var kids []json.RawMessage
		if err := json.Unmarshal(obj[key], &kids); err != nil || jsonscan.IsNull(obj[key]) {
			return nil, fmt.Errorf("%s.%s: expected an array of rule nodes", path, key)
		}
		n := &Node{Kind: kind, raw: raw}
		for i, k := range kids {
			child, err := c.node(k, fmt.Sprintf("%s.%s[%d]", path, key, i), depth+1)
			if err != nil {
				return nil, err
			}
			n.Children = append(n.Children, child)
		}
		return n, nil
	case obj["not"] != nil:
		if err := only("not"); err != nil {
			return nil, err
		}
		child, err := c.node(obj["not"], path+".not", depth+1)
		if err != nil {
			return nil, err
		}
		return &Node{Kind: NodeNot, Children: []*Node{child}, raw: raw}, nil
	case obj["field"] != nil:
		if err := only("field", "op", "value"); err != nil {
			return nil, err
		}
		return c.field(obj, path, raw)
	case obj["activity"] != nil:
		if err := only("activity", "resources", "when", "count"); err != nil {
			return nil, err
		}
		return c.activity(obj, path, raw)
	case obj["group"] != nil:
		if err := only("group"); err != nil {
			return nil, err
		}
		id, ok := jsonscan.DecodeString(obj["group"])
		if !ok || id == "" {
			return nil, fmt.Errorf("%s.group: expected a group id string", path)
		}
		smart, ok := c.cat.Group(id)
		if !ok {
			return nil, fmt.Errorf("%s: group %q does not exist", path, id)
		}
		c.rule.Groups = append(c.rule.Groups, id)
		if smart {
			c.deps["g."+id] = true
		} else {
			c.deps["p.static_groups"] = true
		}
		return &Node{Kind: NodeGroup, Group: id, groupStatic: !smart, raw: raw}, nil
	}
	return nil, fmt.Errorf("%s: a rule node needs one of the keys all, any, not, field, activity or group", path)
}

func (c *compiler) field(obj map[string]json.RawMessage, path string, raw json.RawMessage) (*Node, error) {
	field, ok := jsonscan.DecodeString(obj["field"])
	if !ok {
		return nil, fmt.Errorf("%s.field: expected a string", path)
	}
	op, ok := jsonscan.DecodeString(obj["op"])
	if !ok {
		return nil, fmt.Errorf("%s: trigger on %q needs an op string", path, field)
	}
	n := &Node{Kind: NodeField, Field: field, Op: op, Value: obj["value"], raw: raw}
	switch {
	case strings.HasPrefix(field, "profile.utm."):
		n.src, n.name, n.ftype = SourceUTM, strings.TrimPrefix(field, "profile.utm."), ftString
		if !utmKeys[n.name] {
			return nil, fmt.Errorf("%s: unknown field %q (utm keys are source, medium, campaign, term, content)", path, field)
		}
		c.deps["p.utm"] = true
	case strings.HasPrefix(field, "profile."):
		n.src, n.name = SourceProfile, strings.TrimPrefix(field, "profile.")
		ft, ok := profileFieldTypes[n.name]
		if !ok {
			return nil, fmt.Errorf("%s: unknown field %q", path, field)
		}
		n.ftype = ft
		c.deps["p."+n.name] = true
	case strings.HasPrefix(field, "custom."), strings.HasPrefix(field, "form."):
		kind, lookup, src, dep := "property", c.cat.Property, SourceCustom, "c."
		if strings.HasPrefix(field, "form.") {
			kind, lookup, src, dep = "question", c.cat.Question, SourceForm, "f."
		}
		n.src = src
		n.name = field[strings.IndexByte(field, '.')+1:]
		s, ok := lookup(n.name)
		if !ok {
			return nil, fmt.Errorf("%s: %s %q is not declared", path, kind, n.name)
		}
		n.schema = s
		n.ftype = map[ValueType]fieldType{TypeText: ftString, TypeNumber: ftNumber, TypeDate: ftDate,
			TypeBoolean: ftBool, TypeSingleSelect: ftSingle, TypeMultiSelect: ftIDSet}[s.Type]
		c.deps[dep+n.name] = true
		if src == SourceCustom {
			c.rule.Properties = append(c.rule.Properties, n.name)
		} else {
			c.rule.Questions = append(c.rule.Questions, n.name)
		}
	default:
		return nil, fmt.Errorf("%s: unknown field %q (fields start with profile., custom. or form.)", path, field)
	}
	if err := c.operand(n, path); err != nil {
		return nil, err
	}
	return n, nil
}

var opsByType = map[fieldType][]string{
	ftString: {"eq", "neq", "in", "not_in", "contains", "not_contains", "starts_with", "ends_with"},
	ftStatus: {"in", "not_in"},
	ftTags:   {"has_any", "has_all", "has_none"},
	ftIDSet:  {"has_any", "has_all", "has_none"},
	ftNumber: {"eq", "neq", "lt", "lte", "gt", "gte", "between"},
	ftDate:   {"before", "after", "between", "within_last", "more_than_ago"},
	ftBool:   {"is_true", "is_false"},
	ftSingle: {"in", "not_in"},
}

func (c *compiler) operand(n *Node, path string) error {
	where := fmt.Sprintf("%s: %s %s", path, n.Field, n.Op)
	noValue := func() error {
		if n.Value != nil && !jsonscan.IsNull(n.Value) {
			return fmt.Errorf("%s takes no value", where)
		}
		return nil
	}
	if n.Op == "is_set" || n.Op == "is_not_set" {
		return noValue()
	}
	if !slices.Contains(opsByType[n.ftype], n.Op) {
		return fmt.Errorf("%s: op %q does not apply to a %s field (allowed: %s, is_set, is_not_set)",
			path, n.Op, n.ftype, strings.Join(opsByType[n.ftype], ", "))
	}
	list := func() ([]string, error) {
		ss, ok := jsonscan.DecodeStrings(n.Value)
		if !ok {
			return nil, fmt.Errorf("%s: value must be an array of strings", where)
		}
		if len(ss) == 0 {
			return nil, fmt.Errorf("%s: value must be a non-empty array", where)
		}
		if len(ss) > c.lim.MaxValues {
			return nil, fmt.Errorf("%s: value list has %d entries, more than the limit of %d (max values)", where, len(ss), c.lim.MaxValues)
		}
		return ss, nil
	}
	switch n.ftype {
	case ftString:
		if n.Op == "in" || n.Op == "not_in" {
			ss, err := list()
			if err != nil {
				return err
			}
			for _, s := range ss {
				n.strs = append(n.strs, Fold(s))
			}
			return nil
		}
		s, ok := jsonscan.DecodeString(n.Value)
		if !ok {
			return fmt.Errorf("%s: value must be a string", where)
		}
		n.str = Fold(s)
	case ftStatus:
		ss, err := list()
		if err != nil {
			return err
		}
		for _, s := range ss {
			if !slices.Contains(Statuses, s) {
				return fmt.Errorf("%s: %q is not a status (%s)", where, s, strings.Join(Statuses, ", "))
			}
		}
		n.strs = ss
	case ftTags, ftIDSet, ftSingle:
		ss, err := list()
		if err != nil {
			return err
		}
		for _, s := range ss {
			switch {
			case n.ftype == ftTags:
				n.strs = append(n.strs, Fold(s))
				c.rule.Tags = append(c.rule.Tags, s)
			case n.schema != nil:
				if !n.schema.HasOption(s) {
					return fmt.Errorf("%s: option %q is not declared for %s %q", where, s, n.schema.Kind, n.schema.ID)
				}
				k := n.schema.Kind + ":" + n.schema.ID
				c.rule.Options[k] = append(c.rule.Options[k], s)
				n.strs = append(n.strs, s)
			default: // profile.static_groups
				if err := CheckID("group id", s); err != nil {
					return fmt.Errorf("%s: %w", where, err)
				}
				c.rule.StaticGroups = append(c.rule.StaticGroups, s)
				n.strs = append(n.strs, s)
			}
		}
	case ftNumber:
		if n.Op == "between" {
			var pair []json.RawMessage
			if err := json.Unmarshal(n.Value, &pair); err != nil || len(pair) != 2 {
				return fmt.Errorf("%s: value must be [lo, hi]", where)
			}
			lo, ok1 := jsonscan.DecodeNumber(pair[0])
			hi, ok2 := jsonscan.DecodeNumber(pair[1])
			if !ok1 || !ok2 {
				return fmt.Errorf("%s: value must be [lo, hi] of numbers", where)
			}
			if lo > hi {
				return fmt.Errorf("%s: lo %v is greater than hi %v", where, lo, hi)
			}
			n.lo, n.hi = lo, hi
			return nil
		}
		f, ok := jsonscan.DecodeNumber(n.Value)
		if !ok {
			return fmt.Errorf("%s: value must be a number", where)
		}
		n.num = f
	case ftDate:
		d, err := compileDate(n.Op, n.Value, where)
		if err != nil {
			return err
		}
		n.date = d
		if d.Relative() {
			c.rule.TimeDependent = true
		}
	case ftBool:
		return noValue()
	}
	return nil
}

func compileDate(op string, v json.RawMessage, where string) (DateCond, error) {
	d := DateCond{Op: op}
	switch op {
	case "before", "after":
		t, err := ParseTimestamp(v)
		if err != nil {
			return d, fmt.Errorf("%s: value: %w", where, err)
		}
		d.A = t
	case "between":
		var pair []json.RawMessage
		if err := json.Unmarshal(v, &pair); err != nil || len(pair) != 2 {
			return d, fmt.Errorf("%s: value must be [from, to]", where)
		}
		a, err := ParseTimestamp(pair[0])
		if err != nil {
			return d, fmt.Errorf("%s: from: %w", where, err)
		}
		b, err := ParseTimestamp(pair[1])
		if err != nil {
			return d, fmt.Errorf("%s: to: %w", where, err)
		}
		if a > b {
			return d, fmt.Errorf("%s: from is after to", where)
		}
		d.A, d.B = a, b
	case "within_last", "more_than_ago":
		var dur map[string]json.RawMessage
		if err := json.Unmarshal(v, &dur); err != nil || len(dur) != 1 {
			return d, fmt.Errorf(`%s: value must be {"days": N} or {"hours": N}`, where)
		}
		for unit, nraw := range dur {
			var per Millis
			switch unit {
			case "days":
				per = 24 * 3600 * 1000
			case "hours":
				per = 3600 * 1000
			default:
				return d, fmt.Errorf(`%s: value must be {"days": N} or {"hours": N}, not %q`, where, unit)
			}
			f, ok := jsonscan.DecodeNumber(nraw)
			if !ok || f < 0 || f != float64(int64(f)) || f > 1e6 {
				return d, fmt.Errorf("%s: %s must be a whole number between 0 and 1000000", where, unit)
			}
			d.A = Millis(f) * per
		}
	default:
		return d, fmt.Errorf("%s: unknown date op %q (before, after, between, within_last, more_than_ago)", where, op)
	}
	return d, nil
}

func (c *compiler) activity(obj map[string]json.RawMessage, path string, raw json.RawMessage) (*Node, error) {
	typ, ok := jsonscan.DecodeString(obj["activity"])
	if !ok || !activityTypeSet[typ] {
		return nil, fmt.Errorf("%s: unknown activity type %s", path, string(obj["activity"]))
	}
	n := &Node{Kind: NodeActivity, Activity: typ, CountOp: "gte", CountN: 1, raw: raw}
	c.deps["a."+typ] = true
	if r, present := obj["resources"]; present && !jsonscan.IsNull(r) {
		ss, ok := jsonscan.DecodeStrings(r)
		if !ok || len(ss) == 0 {
			return nil, fmt.Errorf("%s.resources: expected a non-empty array of resource ids", path)
		}
		if len(ss) > c.lim.MaxValues {
			return nil, fmt.Errorf("%s.resources: %d entries, more than the limit of %d (max values)", path, len(ss), c.lim.MaxValues)
		}
		if !ActivityHasResource(typ) {
			return nil, fmt.Errorf("%s.resources: %s activities have no resource", path, typ)
		}
		n.resSet = make(map[string]struct{}, len(ss))
		for _, s := range ss {
			n.resSet[s] = struct{}{}
		}
		for s := range n.resSet {
			n.Resources = append(n.Resources, s)
		}
		slices.Sort(n.Resources)
	}
	if w, present := obj["when"]; present && !jsonscan.IsNull(w) {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(w, &m); err != nil || len(m) != 1 {
			return nil, fmt.Errorf("%s.when: expected an object with one date op", path)
		}
		for op, v := range m {
			d, err := compileDate(op, v, path+".when")
			if err != nil {
				return nil, err
			}
			n.When = &d
			if d.Relative() {
				c.rule.TimeDependent = true
			}
		}
	}
	if cnt, present := obj["count"]; present && !jsonscan.IsNull(cnt) {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(cnt, &m); err != nil || len(m) != 1 {
			return nil, fmt.Errorf(`%s.count: expected one of {"gte": N}, {"lte": N}, {"eq": N}`, path)
		}
		for op, v := range m {
			if op != "gte" && op != "lte" && op != "eq" {
				return nil, fmt.Errorf(`%s.count: unknown op %q (gte, lte, eq)`, path, op)
			}
			f, ok := jsonscan.DecodeNumber(v)
			if !ok || f < 0 || f != float64(int64(f)) || f > 1e9 {
				return nil, fmt.Errorf("%s.count.%s: expected a whole number >= 0", path, op)
			}
			n.CountOp, n.CountN = op, int64(f)
		}
	}
	return n, nil
}
