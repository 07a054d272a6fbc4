package scenario

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// ---- definition values ----

func (g *gen) schemaValue(sp *spotState, spec *schemaSpec, typ string, options []string, label string) map[string]any {
	v := map[string]any{"kind": spec.kind, "spot": sp.id, "id": spec.id, "label": label, "type": typ}
	if len(options) > 0 {
		var opts []map[string]any
		for _, o := range options {
			opts = append(opts, map[string]any{"id": o, "label": g.optionLabel(o)})
		}
		v["options"] = opts
	}
	if g.chance(0.3) {
		v["ts"] = g.tsString(g.recordTS())
	}
	return v
}

func (g *gen) optionLabel(o string) string {
	switch g.r.IntN(3) {
	case 0:
		return strings.ToUpper(o)
	case 1:
		return "Option " + o
	}
	return o
}

func schemaKey(sp *spotState, spec *schemaSpec) *string {
	return str(sp.id + "/" + spec.kind + "/" + spec.id)
}

// putSchema declares or updates a schema (valid: the caller checked
// referential integrity).
func (g *gen) putSchema(sp *spotState, spec *schemaSpec, typ string, options []string, what string) {
	label := strings.ToUpper(spec.id[:1]) + strings.ReplaceAll(spec.id[1:], "_", " ")
	if g.chance(0.3) {
		label += " (" + g.pick([]string{"v2", "new", "renamed", "é"}) + ")"
	}
	options = append([]string(nil), options...)
	g.emit("definitions", schemaKey(sp, spec), g.schemaValue(sp, spec, typ, options, label), false, what)
	sp.schemas[spec.kind+":"+spec.id] = &schemaState{spec: spec, typ: typ, options: options, label: label}
}

func groupKey(sp *spotState, id string) *string { return str(sp.id + "/group/" + id) }

var groupNames = []string{"Engaged VIPs", "Newcomers", "Dormant", "Live fans", "Course finishers", "Équipe", "Σύλλογος", "Power users"}

func (g *gen) groupValue(sp *spotState, id, typ string, rule any) map[string]any {
	v := map[string]any{"kind": "group", "spot": sp.id, "id": id, "type": typ, "name": g.pick(groupNames) + " " + id}
	if g.chance(0.5) {
		v["icon"] = g.pick([]string{"star", "fire", "rocket"})
	}
	if g.chance(0.3) {
		v["description"] = "Generated group " + id
	}
	if g.chance(0.3) {
		v["ts"] = g.tsString(g.recordTS())
	}
	if rule != nil {
		v["rule"] = rule
	}
	if g.chance(0.7) {
		v["resources"] = g.resourceList()
	}
	return v
}

// resourceList returns one to three distinct linked resources, in random
// order.
func (g *gen) resourceList() []any {
	n := 1 + g.r.IntN(3)
	out := make([]any, 0, n)
	for _, i := range g.r.Perm(len(linkedResources))[:n] {
		r := linkedResources[i]
		out = append(out, map[string]any{"id": r.id, "type": r.typ, "title": "Title of " + r.id})
	}
	return out
}

// editResources re-emits an existing group's definition with another
// resource list (or none), everything else unchanged.
func (g *gen) editResources(sp *spotState) bool {
	ids := slices.Sorted(maps.Keys(sp.groups))
	if len(ids) == 0 {
		return false
	}
	id := g.pick(ids)
	v := maps.Clone(sp.groups[id].value)
	if g.chance(0.2) {
		delete(v, "resources")
	} else {
		v["resources"] = g.resourceList()
	}
	g.emit("definitions", groupKey(sp, id), v, false, "def/group/resources")
	sp.groups[id].value = v
	return true
}

func (g *gen) putStatic(sp *spotState, id, what string) {
	v := g.groupValue(sp, id, "static", nil)
	g.emit("definitions", groupKey(sp, id), v, false, what)
	if sp.groups[id] == nil {
		sp.groups[id] = &groupState{static: true}
	}
	sp.groups[id].value = v
}

// putSmart defines or updates smart group id with a fresh valid rule.
func (g *gen) putSmart(sp *spotState, id, what string) {
	rf := newRefs()
	rule := g.rule(sp, smartIndex(id), rf)
	v := g.groupValue(sp, id, "smart", rule)
	g.emit("definitions", groupKey(sp, id), v, false, what)
	sp.groups[id] = &groupState{refs: rf, value: v}
}

func smartIndex(id string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(id, "g"))
	if err != nil {
		panic("scenario: not a smart group id: " + id)
	}
	return n
}

// ---- referential integrity, as the generator tracks it ----

func (sp *spotState) smartGroups() []string {
	var out []string
	for _, id := range slices.Sorted(maps.Keys(sp.groups)) {
		if !sp.groups[id].static {
			out = append(out, id)
		}
	}
	return out
}

func (sp *spotState) groupReferenced(id string) bool {
	for _, gs := range sp.groups {
		if gs.refs != nil && (gs.refs.groups[id] || gs.refs.statics[id]) {
			return true
		}
	}
	return false
}

func (sp *spotState) schemaReferenced(key string) bool {
	for _, gs := range sp.groups {
		if gs.refs != nil && gs.refs.schemas[key] {
			return true
		}
	}
	return false
}

func (sp *spotState) optionReferenced(key, option string) bool {
	for _, gs := range sp.groups {
		if gs.refs != nil && gs.refs.options[key+"\x00"+option] {
			return true
		}
	}
	return false
}

// ---- valid definition changes ----

func (g *gen) definition(sp *spotState) {
	switch x := g.r.Float64(); {
	case x < 0.28:
		if ids := sp.smartGroups(); len(ids) > 0 {
			g.putSmart(sp, g.pick(ids), "def/group/update")
			return
		}
	case x < 0.38:
		var missing []string
		for _, id := range sp.smartIDs {
			if sp.groups[id] == nil {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			g.putSmart(sp, g.pick(missing), "def/group/create")
			return
		}
	case x < 0.46:
		var deletable []string
		for _, id := range slices.Sorted(maps.Keys(sp.groups)) {
			if !sp.groupReferenced(id) {
				deletable = append(deletable, id)
			}
		}
		if len(deletable) > 0 && g.chance(0.9) {
			id := g.pick(deletable)
			g.emit("definitions", groupKey(sp, id), nil, false, "def/group/delete")
			delete(sp.groups, id)
			delete(sp.blacklist, id)
			return
		}
		// Deleting a group that does not exist is a valid no-op.
		g.emit("definitions", groupKey(sp, "g-gone"), nil, false, "def/group/delete-missing")
		return
	case x < 0.51:
		id := g.pick(staticGroupIDs)
		what := "def/static/update"
		if sp.groups[id] == nil {
			what = "def/static/create"
		}
		g.putStatic(sp, id, what)
		return
	case x < 0.58:
		if g.editResources(sp) {
			return
		}
	case x < 0.78:
		g.schemaChange(sp)
		return
	case x < 0.93:
		if ids := sp.smartGroups(); len(ids) > 0 {
			gid, m := g.pick(ids), g.pick(sp.members)
			g.emit("definitions", str(sp.id+"/blacklist/"+gid+"/"+m),
				map[string]any{"kind": "blacklist", "spot": sp.id, "group": gid, "member": m}, false, "def/blacklist/put")
			if sp.blacklist[gid] == nil {
				sp.blacklist[gid] = map[string]bool{}
			}
			sp.blacklist[gid][m] = true
			return
		}
	default:
		gid, m := g.pick(sp.smartIDs), g.pick(sp.members)
		if gs := slices.Sorted(maps.Keys(sp.blacklist)); len(gs) > 0 && g.chance(0.7) {
			gid = g.pick(gs)
			if ms := slices.Sorted(maps.Keys(sp.blacklist[gid])); len(ms) > 0 {
				m = g.pick(ms)
			}
		}
		g.emit("definitions", str(sp.id+"/blacklist/"+gid+"/"+m), nil, false, "def/blacklist/delete")
		delete(sp.blacklist[gid], m)
		return
	}
	g.putSmart(sp, g.pick(sp.smartIDs), "def/group/put")
}

// schemaChange emits a valid schema change: a late declaration, a relabel,
// an added option, the removal of an unreferenced option, a type change or
// delete of an unreferenced schema, or the re-declaration of a deleted one.
func (g *gen) schemaChange(sp *spotState) {
	spec := &schemaCatalogue[g.r.IntN(len(schemaCatalogue))]
	key := spec.kind + ":" + spec.id
	st := sp.schemas[key]
	if st == nil {
		what := "def/schema/redeclare"
		if spec.late {
			what = "def/schema/declare-late"
		}
		g.putSchema(sp, spec, spec.typ, spec.options, what)
		return
	}
	referenced := sp.schemaReferenced(key)
	switch x := g.r.Float64(); {
	case x < 0.25:
		g.putSchema(sp, spec, st.typ, st.options, "def/schema/relabel")
		return
	case x < 0.5 && len(st.options) > 0:
		var extra []string
		for _, o := range append(append([]string(nil), spec.options...), spec.extra...) {
			if !slices.Contains(st.options, o) {
				extra = append(extra, o)
			}
		}
		if len(extra) > 0 {
			g.putSchema(sp, spec, st.typ, append(st.options, g.pick(extra)), "def/schema/add-option")
			return
		}
	case x < 0.7 && len(st.options) > 1:
		var removable []string
		for _, o := range st.options {
			if !sp.optionReferenced(key, o) {
				removable = append(removable, o)
			}
		}
		if len(removable) > 0 {
			drop := g.pick(removable)
			var keep []string
			for _, o := range st.options {
				if o != drop {
					keep = append(keep, o)
				}
			}
			g.putSchema(sp, spec, st.typ, keep, "def/schema/remove-option")
			return
		}
	case x < 0.85 && !referenced:
		typ := g.pick(valueTypes)
		var opts []string
		if typ == "single_select" || typ == "multi_select" {
			opts = append(append([]string(nil), spec.options...), spec.extra...)
			if len(opts) == 0 {
				opts = []string{"opt-a", "opt-b"}
			}
			opts = g.subset(opts, 1, len(opts))
			slices.Sort(opts)
		}
		g.putSchema(sp, spec, typ, opts, "def/schema/change-type")
		return
	case !referenced:
		g.emit("definitions", schemaKey(sp, spec), nil, false, "def/schema/delete")
		delete(sp.schemas, key)
		return
	}
	g.putSchema(sp, spec, st.typ, st.options, "def/schema/relabel")
}

// ---- rules ----

// rule returns a valid rule for smart group g<self> against the spot's
// current definitions, recording what it references in rf. Group triggers
// name static groups or smart groups g<j> with j < self only, so rules
// never form a cycle.
func (g *gen) rule(sp *spotState, self int, rf *refs) any {
	switch x := g.r.Float64(); {
	case x < 0.4: // the admin UI's two-level form
		outer, inner := g.pick([]string{"all", "any"}), g.pick([]string{"all", "any"})
		var conds []any
		for n := 1 + g.r.IntN(3); n > 0; n-- {
			var triggers []any
			for k := 1 + g.r.IntN(3); k > 0; k-- {
				triggers = append(triggers, g.trigger(sp, self, rf))
			}
			conds = append(conds, map[string]any{inner: triggers})
		}
		return map[string]any{outer: conds}
	case x < 0.9:
		return g.tree(sp, self, rf, 0)
	default:
		return g.trigger(sp, self, rf)
	}
}

func (g *gen) tree(sp *spotState, self int, rf *refs, depth int) any {
	if depth >= 3 || (depth > 0 && g.chance(0.45)) {
		return g.trigger(sp, self, rf)
	}
	switch x := g.r.Float64(); {
	case x < 0.06:
		return map[string]any{g.pick([]string{"all", "any"}): []any{}}
	case x < 0.25:
		return map[string]any{"not": g.tree(sp, self, rf, depth+1)}
	default:
		kids := []any{}
		for n := 1 + g.r.IntN(3); n > 0; n-- {
			kids = append(kids, g.tree(sp, self, rf, depth+1))
		}
		return map[string]any{g.pick([]string{"all", "any"}): kids}
	}
}

func (g *gen) trigger(sp *spotState, self int, rf *refs) map[string]any {
	switch x := g.r.Float64(); {
	case x < 0.55:
		return g.attrTrigger(sp, rf)
	case x < 0.85:
		return g.activityTrigger()
	default:
		var cands []string
		for _, id := range slices.Sorted(maps.Keys(sp.groups)) {
			if sp.groups[id].static || smartIndex(id) < self {
				cands = append(cands, id)
			}
		}
		if len(cands) == 0 {
			return g.attrTrigger(sp, rf)
		}
		id := g.pick(cands)
		rf.groups[id] = true
		return map[string]any{"group": id}
	}
}

// dateOperand returns a date op and its operand.
func (g *gen) dateOperand() (string, any) {
	op := g.pick(dateOps)
	switch op {
	case "before", "after":
		return op, g.tsValue(g.instant())
	case "between":
		a, b := g.instant(), g.instant()
		if g.chance(0.1) {
			b = a
		}
		if a > b {
			a, b = b, a
		}
		return op, []any{g.tsValue(a), g.tsValue(b)}
	}
	if g.chance(0.7) {
		return op, map[string]any{"days": []int{0, 1, 7, 30, 90}[g.r.IntN(5)]}
	}
	return op, map[string]any{"hours": []int{1, 12, 48}[g.r.IntN(3)]}
}

func (g *gen) stringOperand(op string, pool []string) any {
	switch op {
	case "in", "not_in":
		var vs []string
		for _, s := range g.subset(pool, 1, 3) {
			vs = append(vs, g.mixCase(s))
		}
		return vs
	case "contains", "not_contains", "starts_with", "ends_with":
		return g.mixCase(g.substring(g.pick(pool), op))
	}
	return g.mixCase(g.pick(pool))
}

func (g *gen) attrTrigger(sp *spotState, rf *refs) map[string]any {
	var field, op string
	var value any
	operand := newRefs()
	switch x := g.r.Float64(); {
	case x < 0.2:
		f := g.pick(profileStringFields)
		if g.chance(0.3) {
			f = "utm." + g.pick(utmKeys)
		}
		field, op = "profile."+f, g.pick(stringOps)
		value = g.stringOperand(op, stringPools[f])
	case x < 0.3:
		field, op = "profile.status", g.pick([]string{"in", "not_in"})
		value = g.subset(statuses, 1, 3)
	case x < 0.45:
		field, op = "profile.tags", g.pick(setOps)
		var tags []string
		for _, t := range g.subset(tagPool, 1, 3) {
			tags = append(tags, g.mixCase(t))
		}
		value = tags
	case x < 0.52:
		field, op = "profile.static_groups", g.pick(setOps)
		ids := g.subset(staticGroupRefs, 1, 2)
		for _, id := range ids {
			operand.statics[id] = true
		}
		value = ids
	case x < 0.67:
		field = "profile." + g.pick(profileDateFields)
		op, value = g.dateOperand()
	default:
		keys := slices.Sorted(maps.Keys(sp.schemas))
		if len(keys) == 0 {
			field, op, value = "profile.first_name", "is_set", nil
			break
		}
		st := sp.schemas[g.pick(keys)]
		prefix := "custom."
		if st.spec.kind == "question" {
			prefix = "form."
		}
		field = prefix + st.spec.id
		rf.schemas[st.key()] = true
		op, value = g.schemaOperand(st, operand)
	}
	if g.chance(0.08) {
		op, value = g.pick([]string{"is_set", "is_not_set"}), nil
	}
	if value != nil {
		// Ids in the operand are references only if the operand is kept.
		for id := range operand.statics {
			rf.statics[id] = true
		}
		for o := range operand.options {
			rf.options[o] = true
		}
	}
	t := map[string]any{"field": field, "op": op}
	if value != nil {
		t["value"] = value
	}
	return t
}

func (g *gen) schemaOperand(st *schemaState, rf *refs) (string, any) {
	switch st.typ {
	case "text":
		op := g.pick(stringOps)
		return op, g.stringOperand(op, textPool)
	case "number":
		op := g.pick(numberOps)
		if op == "between" {
			a, b := g.r.IntN(100), g.r.IntN(100)
			if a > b {
				a, b = b, a
			}
			return op, []any{a, float64(b) + 0.5}
		}
		if g.chance(0.2) {
			return op, float64(g.r.IntN(100)) + 0.5
		}
		return op, g.r.IntN(100)
	case "date":
		return g.dateOperand()
	case "boolean":
		return g.pick([]string{"is_true", "is_false"}), nil
	case "single_select", "multi_select":
		op := g.pick([]string{"in", "not_in"})
		if st.typ == "multi_select" {
			op = g.pick(setOps)
		}
		opts := g.subset(st.options, 1, 2)
		for _, o := range opts {
			rf.options[st.key()+"\x00"+o] = true
		}
		return op, opts
	}
	panic("scenario: unknown schema type " + st.typ)
}

func (g *gen) activityTrigger() map[string]any {
	typ := g.pick(activityTypes)
	t := map[string]any{"activity": typ}
	if pool := resources[typ]; pool != nil && g.chance(0.5) {
		t["resources"] = g.subset(pool, 1, 2)
	}
	if g.chance(0.4) {
		op, v := g.dateOperand()
		t["when"] = map[string]any{op: v}
	}
	if g.chance(0.55) {
		switch g.r.IntN(5) {
		case 0:
			t["count"] = map[string]any{"eq": 0}
		case 1:
			t["count"] = map[string]any{"eq": g.r.IntN(3)}
		case 2:
			t["count"] = map[string]any{"lte": g.r.IntN(2)}
		default:
			t["count"] = map[string]any{"gte": g.r.IntN(3)}
		}
	}
	return t
}

// ---- helpers for invalid definitions ----

// freshName returns a name that never exists.
func (g *gen) freshName(prefix string) string {
	g.fresh++
	return fmt.Sprintf("%s-missing-%d", prefix, g.fresh)
}
