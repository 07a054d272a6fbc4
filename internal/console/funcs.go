package console

import (
	"encoding/json"
	"fmt"
	"html/template"
	"slices"
	"sort"
	"strings"
)

var funcs = template.FuncMap{
	"esc":      esc,
	"contains": slices.Contains[[]string, string],
	"join":     strings.Join,
	"list":     strings.Fields,
	"fieldType": func(t trigger, cat *catalog) string {
		return t.fieldType(cat)
	},
	"schema": func(cat *catalog, kind, id string) *schema { return cat.schema(kind, id) },
	"opLabel": func(ops []option, id string) string {
		for _, o := range ops {
			if o.ID == id {
				return o.Label
			}
		}
		return id
	},
	"name": func(prefix string, i, j int, field string) string {
		return fmt.Sprintf("c%d.t%d.%s", i, j, field)
	},
	"fid": func(i, j int, field string) string { return fmt.Sprintf("c%d-t%d-%s", i, j, field) },
	"add": func(a, b int) int { return a + b },
	"needsValue": func(op string) bool {
		switch op {
		case "is_set", "is_not_set", "is_true", "is_false":
			return false
		}
		return true
	},
	"isList": func(op string) bool {
		switch op {
		case "in", "not_in", "has_any", "has_all", "has_none":
			return true
		}
		return false
	},
	"isRelative": func(op string) bool { return op == "within_last" || op == "more_than_ago" },
	"sparkline":  sparkline,
	// otherResources are the resource ids of an activity trigger that are
	// not linked resources of the spot's groups (typed in by hand).
	"otherResources": func(t trigger, cat *catalog) string {
		var out []string
		for _, id := range t.Resources {
			if !slices.ContainsFunc(cat.Resources, func(r resource) bool { return r.ID == id }) && id != "" {
				out = append(out, id)
			}
		}
		return strings.Join(out, ", ")
	},
	"summary": func(t trigger, cat *catalog) string { return t.describe(cat) },
	"explain": explainRows,
	"typeLabel": func(t string) string {
		if t == "smart" {
			return "Smart"
		}
		return "Static"
	},
	"icon": func(s string) string {
		if i, ok := iconNames[s]; ok {
			return i
		}
		if s != "" && len([]rune(s)) <= 2 {
			return s
		}
		return "◉"
	},
	"staticGroups": func(cat *catalog) []group {
		var out []group
		for _, g := range cat.Groups {
			if g.Type == "static" {
				out = append(out, g)
			}
		}
		return out
	},
	"deref": func(n *int) string {
		if n == nil {
			return "–"
		}
		return fmt.Sprint(*n)
	},
}

// iconNames are the icons a group can have, drawn with symbols every
// common font has.
var iconNames = map[string]string{"star": "★", "rocket": "➶", "fire": "♨", "heart": "♥", "trophy": "♛",
	"book": "✎", "bell": "♪", "gem": "◆", "sparkles": "✦", "users": "☺", "moon": "☾", "calendar": "▦"}

// explainRow is one node of an explained rule, flattened for a nested
// list: its depth, its text and its value.
type explainRow struct {
	Depth int
	Text  string
	Value bool
	Kind  string // all, any, not, trigger
}

// explainRows flattens an explained rule tree (SPEC §6: every node has a
// boolean "value") in document order, triggers in the builder's words.
func explainRows(n map[string]any, cat *catalog) []explainRow {
	var out []explainRow
	var walk func(n map[string]any, depth int)
	walk = func(n map[string]any, depth int) {
		v, _ := n["value"].(bool)
		for _, op := range []string{"all", "any"} {
			if kids, ok := n[op].([]any); ok {
				label := "ALL of"
				if op == "any" {
					label = "ANY of"
				}
				out = append(out, explainRow{Depth: depth, Text: label, Value: v, Kind: op})
				for _, k := range kids {
					if km, ok := k.(map[string]any); ok {
						walk(km, depth+1)
					}
				}
				return
			}
		}
		if k, ok := n["not"].(map[string]any); ok {
			out = append(out, explainRow{Depth: depth, Text: "NOT", Value: v, Kind: "not"})
			walk(k, depth+1)
			return
		}
		out = append(out, explainRow{Depth: depth, Text: describeExplained(n, cat), Value: v, Kind: "trigger"})
	}
	walk(n, 0)
	return out
}

// describeExplained renders a trigger of an explained rule in the
// builder's words, with the count of matching activities.
func describeExplained(n map[string]any, cat *catalog) string {
	m := map[string]any{}
	for k, v := range n {
		switch k {
		case "value", "matched_count":
		case "operand":
			m["value"] = v
		default:
			m[k] = v
		}
	}
	raw, _ := json.Marshal(m)
	t, ok := triggerFrom(raw)
	if !ok || cat == nil {
		return describe(n)
	}
	s := t.describe(cat)
	if mc, ok := n["matched_count"]; ok {
		s += fmt.Sprintf(" (matched %v)", mc)
	}
	return s
}

// describe renders a trigger in words.
func describe(n map[string]any) string {
	js := func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	}
	if g, ok := n["group"].(string); ok {
		return "member of group " + g
	}
	if a, ok := n["activity"].(string); ok {
		s := a
		for _, o := range activityTypes {
			if o.ID == a {
				s = o.Label
			}
		}
		if rs, ok := n["resources"]; ok {
			s += " on " + js(rs)
		}
		if w, ok := n["when"].(map[string]any); ok {
			for _, k := range sortedKeys(w) {
				s += " " + strings.ReplaceAll(k, "_", " ") + " " + js(w[k])
			}
		}
		if c, ok := n["count"].(map[string]any); ok {
			for _, k := range sortedKeys(c) {
				s += ", count " + k + " " + js(c[k])
			}
		}
		if mc, ok := n["matched_count"]; ok {
			s += fmt.Sprintf(" (matched %v)", mc)
		}
		return s
	}
	f, _ := n["field"].(string)
	op, _ := n["op"].(string)
	s := f + " " + strings.ReplaceAll(op, "_", " ")
	if v, ok := n["operand"]; ok {
		s += " " + js(v)
	}
	return s
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
