package rule

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/smartgroups/smartgroups/engine/internal/jsonscan"
)

type value struct {
	s   string
	n   float64
	t   Millis
	b   bool
	set []string
}

// interpret reads a kept raw value under a schema; false when it does not
// fit the type (unset).
func interpret(s *Schema, raw json.RawMessage) (value, bool) {
	var v value
	switch s.Type {
	case TypeText:
		str, ok := jsonscan.DecodeString(raw)
		v.s = str
		return v, ok
	case TypeNumber:
		f, ok := jsonscan.DecodeNumber(raw)
		v.n = f
		return v, ok
	case TypeDate:
		t, err := ParseTimestamp(raw)
		v.t = t
		return v, err == nil
	case TypeBoolean:
		b, ok := jsonscan.DecodeBool(raw)
		v.b = b
		return v, ok
	case TypeSingleSelect:
		str, ok := jsonscan.DecodeString(raw)
		if !ok || !s.HasOption(str) {
			return v, false
		}
		v.s = str
		return v, true
	case TypeMultiSelect:
		ss, ok := jsonscan.DecodeStrings(raw)
		if !ok {
			return v, false
		}
		for _, x := range ss {
			if s.HasOption(x) {
				v.set = append(v.set, x)
			}
		}
		return v, len(v.set) > 0
	}
	return v, false
}

// fieldValue reads the trigger's field for a member.
func fieldValue(n *Node, m MemberView) (value, bool) {
	var v value
	p := m.Profile()
	switch n.src {
	case SourceUTM:
		s, ok := p.UTM[n.name]
		v.s = s
		return v, ok
	case SourceProfile:
		switch n.ftype {
		case ftString, ftStatus:
			s := p.str(n.name)
			if s == nil {
				return v, false
			}
			v.s = *s
			return v, true
		case ftTags:
			v.set = p.Tags
			return v, len(v.set) > 0
		case ftIDSet:
			v.set = p.StaticGroups
			return v, len(v.set) > 0
		case ftDate:
			t := *p.DateField(n.name)
			if n.name == "last_activity_at" {
				if la, ok := m.LastActivity(); ok && (t == nil || la > *t) {
					t = &la
				}
			}
			if t == nil {
				return v, false
			}
			v.t = *t
			return v, true
		}
	case SourceCustom, SourceForm:
		get := m.Custom
		if n.src == SourceForm {
			get = m.Form
		}
		raw, ok := get(n.name)
		if !ok {
			return v, false
		}
		return interpret(n.schema, raw)
	}
	return v, false
}

func negative(op string) bool {
	return op == "neq" || op == "not_in" || op == "not_contains" || op == "has_none"
}

func positiveOf(op string) string {
	switch op {
	case "neq":
		return "eq"
	case "not_in":
		return "in"
	case "not_contains":
		return "contains"
	case "has_none":
		return "has_any"
	}
	return op
}

// evalField evaluates an attribute trigger.
func evalField(n *Node, m MemberView, now Millis) bool {
	v, set := fieldValue(n, m)
	switch n.Op {
	case "is_set":
		return set
	case "is_not_set":
		return !set
	}
	if negative(n.Op) {
		return !set || !evalPositive(n, positiveOf(n.Op), v)
	}
	if !set {
		return false
	}
	if n.ftype == ftDate {
		return n.date.test(v.t, now)
	}
	return evalPositive(n, n.Op, v)
}

func evalPositive(n *Node, op string, v value) bool {
	switch n.ftype {
	case ftString:
		s := Fold(v.s)
		switch op {
		case "eq":
			return s == n.str
		case "in":
			return slices.Contains(n.strs, s)
		case "contains":
			return strings.Contains(s, n.str)
		case "starts_with":
			return strings.HasPrefix(s, n.str)
		case "ends_with":
			return strings.HasSuffix(s, n.str)
		}
	case ftStatus, ftSingle:
		return slices.Contains(n.strs, v.s)
	case ftTags, ftIDSet:
		has := func(x string) bool {
			for _, s := range v.set {
				if n.ftype == ftTags {
					s = Fold(s)
				}
				if s == x {
					return true
				}
			}
			return false
		}
		switch op {
		case "has_any":
			for _, x := range n.strs {
				if has(x) {
					return true
				}
			}
			return false
		case "has_all":
			for _, x := range n.strs {
				if !has(x) {
					return false
				}
			}
			return true
		}
	case ftNumber:
		switch op {
		case "eq":
			return v.n == n.num
		case "lt":
			return v.n < n.num
		case "lte":
			return v.n <= n.num
		case "gt":
			return v.n > n.num
		case "gte":
			return v.n >= n.num
		case "between":
			return n.lo <= v.n && v.n <= n.hi
		}
	case ftBool:
		return (op == "is_true") == v.b
	}
	return false
}

// countActivities counts the member's activities matching the trigger.
func countActivities(n *Node, m MemberView, now Millis) (int64, error) {
	acts, err := m.Activities(n.Activity)
	if err != nil {
		return 0, err
	}
	var c int64
	for i := range acts {
		if activityMatches(n, &acts[i], now) {
			c++
		}
	}
	return c, nil
}

// hasResource reports whether an activity trigger counts activities on
// resource id: every resource when it names none.
func (n *Node) hasResource(id string) bool {
	if n.resSet == nil {
		return true
	}
	_, ok := n.resSet[id]
	return ok
}

func activityMatches(n *Node, a *Activity, now Millis) bool {
	if !n.hasResource(a.Resource) {
		return false
	}
	return n.When == nil || n.When.test(a.TS, now)
}

func compareCount(op string, c, n int64) bool {
	switch op {
	case "gte":
		return c >= n
	case "lte":
		return c <= n
	case "eq":
		return c == n
	}
	return false
}

// Eval evaluates a compiled rule for a member at now.
func Eval(r *Rule, m MemberView, now Millis) (bool, error) {
	return evalNode(r.Root, m, now, nil)
}

// ExplainNode is a rule node with its value for one member.
type ExplainNode map[string]any

// Explain evaluates the rule and returns its tree with a "value" added to
// every node (SPEC §6).
func Explain(r *Rule, m MemberView, now Millis) (bool, ExplainNode, error) {
	out := ExplainNode{}
	v, err := evalNode(r.Root, m, now, out)
	return v, out, err
}

// explainRaw copies a trigger's own JSON into its explain node. (A call of
// its own: taking the address of evalNode's ex would make every
// evaluation allocate it.)
func explainRaw(n *Node, ex ExplainNode) {
	_ = json.Unmarshal(n.raw, &ex)
}

func evalNode(n *Node, m MemberView, now Millis, ex ExplainNode) (bool, error) {
	var v bool
	switch n.Kind {
	case NodeAll, NodeAny:
		v = n.Kind == NodeAll
		var kids []any
		for _, c := range n.Children {
			var cex ExplainNode
			if ex != nil {
				cex = ExplainNode{}
				kids = append(kids, cex)
			} else if v != (n.Kind == NodeAll) {
				break // short-circuit when not explaining
			}
			cv, err := evalNode(c, m, now, cex)
			if err != nil {
				return false, err
			}
			if n.Kind == NodeAll {
				v = v && cv
			} else {
				v = v || cv
			}
		}
		if ex != nil {
			key := "all"
			if n.Kind == NodeAny {
				key = "any"
			}
			if kids == nil {
				kids = []any{}
			}
			ex[key] = kids
		}
	case NodeNot:
		var cex ExplainNode
		if ex != nil {
			cex = ExplainNode{}
			ex["not"] = cex
		}
		cv, err := evalNode(n.Children[0], m, now, cex)
		if err != nil {
			return false, err
		}
		v = !cv
	case NodeField:
		v = evalField(n, m, now)
		if ex != nil {
			explainRaw(n, ex)
			if op, ok := ex["value"]; ok {
				// "value" is the node's boolean here; the operand moves.
				ex["operand"] = op
			}
		}
	case NodeActivity:
		c, err := countActivities(n, m, now)
		if err != nil {
			return false, err
		}
		v = compareCount(n.CountOp, c, n.CountN)
		if ex != nil {
			explainRaw(n, ex)
			ex["matched_count"] = c
		}
	case NodeGroup:
		v = m.InSmartGroup(n.Group)
		if n.groupStatic {
			v = slices.Contains(m.Profile().StaticGroups, n.Group)
		}
		if ex != nil {
			ex["group"] = n.Group
		}
	}
	if ex != nil {
		ex["value"] = v
	}
	return v, nil
}
