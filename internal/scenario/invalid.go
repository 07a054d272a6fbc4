package scenario

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// invalidKinds are the kinds of deliberately invalid records. Each returns
// false when its precondition does not hold in the current state (then
// another kind is tried).
var invalidKinds = []struct {
	name string
	gen  func(g *gen, sp *spotState) bool
}{
	// member records
	{"bad_json", (*gen).invBadJSON},
	{"key_mismatch", (*gen).invKeyMismatch},
	{"null_key", (*gen).invNullKey},
	{"missing_ts", (*gen).invMissingTS},
	{"bad_ts", (*gen).invBadTS},
	{"missing_spot", (*gen).invMissingSpot},
	{"bad_member_id", (*gen).invBadMemberID},
	{"bad_status", (*gen).invBadStatus},
	{"bad_profile_field", (*gen).invBadProfileField},
	{"oversize_tags", (*gen).invOversizeTags},
	{"missing_profile", (*gen).invMissingProfile},
	{"unknown_activity_type", (*gen).invUnknownActivityType},
	{"missing_resource", (*gen).invMissingResource},
	{"bad_resource", (*gen).invBadResource},
	{"wrong_property_type", (*gen).invWrongPropertyType},
	{"empty_properties", (*gen).invEmptyProperties},
	{"tombstone_not_profiles", (*gen).invTombstoneNotProfiles},
	// definitions
	{"bad_rule", (*gen).invBadRule},
	{"cycle", (*gen).invCycle},
	{"group_type_change", (*gen).invGroupTypeChange},
	{"delete_referenced_group", (*gen).invDeleteReferencedGroup},
	{"delete_referenced_schema", (*gen).invDeleteReferencedSchema},
	{"remove_referenced_option", (*gen).invRemoveReferencedOption},
	{"change_referenced_type", (*gen).invChangeReferencedType},
	{"def_key_mismatch", (*gen).invDefKeyMismatch},
	{"def_bad_json", (*gen).invDefBadJSON},
	{"def_bad_key", (*gen).invDefBadKey},
	{"missing_name", (*gen).invMissingName},
	{"smart_without_rule", (*gen).invSmartWithoutRule},
	{"static_with_rule", (*gen).invStaticWithRule},
	{"bad_schema", (*gen).invBadSchema},
	{"blacklist_unknown_group", (*gen).invBlacklistUnknownGroup},
	{"blacklist_static_group", (*gen).invBlacklistStaticGroup},
	{"bad_resources", (*gen).invBadResources},
}

func (g *gen) invalid(sp *spotState) {
	for {
		k := invalidKinds[g.r.IntN(len(invalidKinds))]
		if k.gen(g, sp) {
			g.out[len(g.out)-1].What = "invalid/" + k.name
			return
		}
	}
}

func (g *gen) bad(topic string, key *string, value any) {
	g.emit(topic, key, value, true, "")
}

func (g *gen) memberTopic() string {
	return g.pick([]string{"profiles", "activities", "properties"})
}

// validMemberValue returns a valid value for a member record of topic, to
// be broken by the caller.
func (g *gen) validMemberValue(sp *spotState, topic, m string) map[string]any {
	switch topic {
	case "profiles":
		return map[string]any{"spot": sp.id, "member": m, "ts": g.tsValue(g.recordTS()), "profile": g.profilePatch(false)}
	case "activities":
		v, _ := g.activityValue(sp, m, g.pick(activityTypes))
		return v
	}
	return map[string]any{"spot": sp.id, "member": m, "ts": g.tsValue(g.recordTS()), "custom": map[string]any{"x_color": "red"}}
}

// ---- member records ----

func (g *gen) invBadJSON(sp *spotState) bool {
	m := g.pick(sp.members)
	values := []any{
		`{"spot":"` + sp.id + `","member":"` + m + `",`, // a string holding truncated JSON
		"not json at all",
		[]any{map[string]any{"spot": sp.id, "member": m}},
		42,
		true,
	}
	g.bad(g.memberTopic(), memberKey(sp, m), values[g.r.IntN(len(values))])
	return true
}

func (g *gen) invKeyMismatch(sp *spotState) bool {
	if len(sp.members) < 2 {
		return false
	}
	ms := g.subset(sp.members, 2, 2)
	topic := g.memberTopic()
	key := memberKey(sp, ms[1])
	if g.chance(0.3) {
		key = str(strings.ToUpper(sp.id) + "/" + ms[0]) // keys compare exactly
	}
	g.bad(topic, key, g.validMemberValue(sp, topic, ms[0]))
	return true
}

func (g *gen) invNullKey(sp *spotState) bool {
	topic := g.memberTopic()
	g.bad(topic, nil, g.validMemberValue(sp, topic, g.pick(sp.members)))
	return true
}

func (g *gen) invMissingTS(sp *spotState) bool {
	m, topic := g.pick(sp.members), g.memberTopic()
	v := g.validMemberValue(sp, topic, m)
	if g.chance(0.5) {
		delete(v, "ts")
	} else {
		v["ts"] = nil
	}
	g.bad(topic, memberKey(sp, m), v)
	return true
}

func (g *gen) invBadTS(sp *spotState) bool {
	m, topic := g.pick(sp.members), g.memberTopic()
	v := g.validMemberValue(sp, topic, m)
	v["ts"] = g.pick([]string{"2026-11-20 09:00:00", "2026-11-20T09:00:00", "yesterday", "1795165200000"})
	if g.chance(0.25) {
		v["ts"] = 1795165200000.5
	}
	g.bad(topic, memberKey(sp, m), v)
	return true
}

func (g *gen) invMissingSpot(sp *spotState) bool {
	m, topic := g.pick(sp.members), g.memberTopic()
	v := g.validMemberValue(sp, topic, m)
	delete(v, "spot")
	g.bad(topic, memberKey(sp, m), v)
	return true
}

func (g *gen) invBadMemberID(sp *spotState) bool {
	topic := g.memberTopic()
	m := g.pick([]string{"", strings.Repeat("m", 257)})
	g.bad(topic, memberKey(sp, m), g.validMemberValue(sp, topic, m))
	return true
}

func (g *gen) invBadStatus(sp *spotState) bool {
	m := g.pick(sp.members)
	p := g.profilePatch(false)
	p["status"] = g.pick([]string{"active", "Accepted", "ACCEPTED", ""})
	g.bad("profiles", memberKey(sp, m), map[string]any{"spot": sp.id, "member": m, "ts": g.tsValue(g.recordTS()), "profile": p})
	return true
}

func (g *gen) invBadProfileField(sp *spotState) bool {
	m := g.pick(sp.members)
	p := g.profilePatch(false)
	switch g.r.IntN(6) {
	case 0:
		p["first_name"] = 42
	case 1:
		p["tags"] = "vip"
	case 2:
		p["utm"] = "google"
	case 3:
		p["static_groups"] = []string{"st1", ""}
	case 4:
		p["registered_at"] = "last tuesday"
	default:
		p["utm"] = map[string]any{"source": 7}
	}
	g.bad("profiles", memberKey(sp, m), map[string]any{"spot": sp.id, "member": m, "ts": g.tsValue(g.recordTS()), "profile": p})
	return true
}

func (g *gen) invOversizeTags(sp *spotState) bool {
	m := g.pick(sp.members)
	tags := make([]string, 1001+g.r.IntN(20))
	for i := range tags {
		tags[i] = fmt.Sprintf("t%d", i)
	}
	g.bad("profiles", memberKey(sp, m), map[string]any{"spot": sp.id, "member": m, "ts": g.tsValue(g.recordTS()),
		"profile": map[string]any{"status": "accepted", "tags": tags}})
	return true
}

func (g *gen) invMissingProfile(sp *spotState) bool {
	m := g.pick(sp.members)
	v := map[string]any{"spot": sp.id, "member": m, "ts": g.tsValue(g.recordTS())}
	switch g.r.IntN(4) {
	case 0:
		v["profile"] = nil
	case 1:
		v["erase"] = "yes"
	case 2:
		v["erase"] = false
	}
	g.bad("profiles", memberKey(sp, m), v)
	return true
}

func (g *gen) invUnknownActivityType(sp *spotState) bool {
	m := g.pick(sp.members)
	v, _ := g.activityValue(sp, m, g.pick(activityTypes))
	v["type"] = g.pick([]string{"teleported", "Attended_Live", "attended-live", ""})
	g.bad("activities", memberKey(sp, m), v)
	return true
}

func (g *gen) invMissingResource(sp *spotState) bool {
	m := g.pick(sp.members)
	v, _ := g.activityValue(sp, m, g.pick([]string{"attended_live", "completed_course", "opened_document"}))
	if g.chance(0.5) {
		delete(v, "resource")
	} else {
		v["resource"] = nil
	}
	g.bad("activities", memberKey(sp, m), v)
	return true
}

func (g *gen) invBadResource(sp *spotState) bool {
	m := g.pick(sp.members)
	v, _ := g.activityValue(sp, m, g.pick([]string{"attended_live", "opened_link"}))
	v["resource"] = []any{"live-1", map[string]any{"title": "no id"}, map[string]any{"id": 7}, map[string]any{"id": ""}}[g.r.IntN(4)]
	g.bad("activities", memberKey(sp, m), v)
	return true
}

// misfit returns a value that does not fit the schema as declared now.
func (g *gen) misfit(st *schemaState) any {
	switch st.typ {
	case "text":
		return g.pick2(12, []string{"a"})
	case "number":
		return g.pick([]string{"12", "twelve"})
	case "date":
		return g.pick([]string{"2026-13-01T00:00:00Z", "tomorrow", "2026-11-20"})
	case "boolean":
		return g.pick([]string{"true", "yes"})
	case "single_select":
		return g.pick2("not-an-option", 3)
	case "multi_select":
		if g.chance(0.5) {
			return st.options[0] // a string, not an array
		}
		return []string{st.options[0], "not-an-option"}
	}
	panic("scenario: unknown type " + st.typ)
}

func (g *gen) invWrongPropertyType(sp *spotState) bool {
	keys := slices.Sorted(maps.Keys(sp.schemas))
	if len(keys) == 0 {
		return false
	}
	st := sp.schemas[g.pick(keys)]
	m := g.pick(sp.members)
	vals := g.valuesOf(sp, st.spec.kind) // valid values around the bad one
	vals[st.spec.id] = g.misfit(st)
	field := "custom"
	if st.spec.kind == "question" {
		field = "form"
	}
	g.bad("properties", memberKey(sp, m), map[string]any{"spot": sp.id, "member": m, "ts": g.tsValue(g.recordTS()), field: vals})
	return true
}

func (g *gen) invEmptyProperties(sp *spotState) bool {
	m := g.pick(sp.members)
	v := map[string]any{"spot": sp.id, "member": m, "ts": g.tsValue(g.recordTS())}
	if g.chance(0.5) {
		v["custom"], v["form"] = nil, nil
	}
	g.bad("properties", memberKey(sp, m), v)
	return true
}

func (g *gen) invTombstoneNotProfiles(sp *spotState) bool {
	g.bad(g.pick([]string{"activities", "properties"}), memberKey(sp, g.pick(sp.members)), nil)
	return true
}

// ---- definitions ----

// badNode returns a rule node the rule compiler must reject.
func (g *gen) badNode(sp *spotState) any {
	switch g.r.IntN(18) {
	case 0:
		return map[string]any{"field": "profile.shoe_size", "op": "eq", "value": "42"}
	case 1:
		return map[string]any{"field": "profile.utm.gclid", "op": "eq", "value": "x"}
	case 2:
		return map[string]any{"field": "profile.tags", "op": "eq", "value": "vip"}
	case 3:
		return map[string]any{"field": "profile.status", "op": "eq", "value": "accepted"}
	case 4:
		return map[string]any{"field": "profile.first_name", "op": "in", "value": "Ada"}
	case 5:
		return map[string]any{"field": "profile.registered_at", "op": "within_last", "value": map[string]any{"weeks": 2}}
	case 6:
		return map[string]any{"field": "profile.registered_at", "op": "between", "value": []any{g.cfg.Now, g.cfg.Now - day}}
	case 7:
		return map[string]any{"field": "profile.status", "op": "in", "value": []string{"active"}}
	case 8:
		return map[string]any{"field": "custom." + g.freshName("prop"), "op": "is_set"}
	case 9:
		for _, k := range slices.Sorted(maps.Keys(sp.schemas)) {
			if st := sp.schemas[k]; st.typ == "single_select" {
				return map[string]any{"field": "custom." + st.spec.id, "op": "in", "value": []string{"no-such-option"}}
			}
		}
		return map[string]any{"field": "profile.language", "op": "in", "value": []string{}}
	case 10:
		return map[string]any{"activity": "teleported"}
	case 11:
		return map[string]any{"group": g.freshName("g")}
	case 12:
		return map[string]any{}
	case 13:
		var n any = map[string]any{"field": "profile.first_name", "op": "is_set"}
		for i := 0; i < 40; i++ {
			n = map[string]any{"not": n}
		}
		return n
	case 14:
		return map[string]any{"activity": "attended_live", "count": g.pick2(map[string]any{"gte": -1}, map[string]any{"between": 1})}
	case 15:
		return map[string]any{"activity": "joined_spot", "resources": []string{"live-1"}}
	case 16:
		return map[string]any{"field": "profile.tags", "op": "is_set", "value": []string{"vip"}}
	default:
		return map[string]any{"all": map[string]any{}}
	}
}

func (g *gen) pick2(a, b any) any {
	if g.chance(0.5) {
		return a
	}
	return b
}

// pickSmartID picks a smart-group id of the spot's universe; false when it
// currently names a static group.
func (g *gen) pickSmartID(sp *spotState) (string, bool) {
	id := g.pick(sp.smartIDs)
	gs := sp.groups[id]
	return id, gs == nil || !gs.static
}

// smartGroupValue picks a smart-group id (false when it currently names a
// static group) and returns a valid definition of it.
func (g *gen) smartGroupValue(sp *spotState) (string, map[string]any, bool) {
	id, ok := g.pickSmartID(sp)
	if !ok {
		return id, nil, false
	}
	return id, g.groupValue(sp, id, "smart", g.rule(sp, smartIndex(id), newRefs())), true
}

func (g *gen) invBadRule(sp *spotState) bool {
	id, ok := g.pickSmartID(sp)
	if !ok {
		return false
	}
	bad := g.badNode(sp)
	var rule any
	rf := newRefs()
	switch g.r.IntN(4) {
	case 0:
		rule = bad
	case 1:
		rule = map[string]any{"all": []any{g.trigger(sp, smartIndex(id), rf), bad}}
	case 2:
		rule = map[string]any{"any": []any{bad, g.trigger(sp, smartIndex(id), rf)}}
	default:
		rule = map[string]any{"not": bad}
	}
	g.bad("definitions", groupKey(sp, id), g.groupValue(sp, id, "smart", rule))
	return true
}

func (g *gen) invCycle(sp *spotState) bool {
	smart := sp.smartGroups()
	if len(smart) == 0 {
		return false
	}
	// A two-group cycle when some gk references some smart gj: redefine gj
	// to reference gk.
	if g.chance(0.6) {
		for _, k := range smart {
			for _, j := range slices.Sorted(maps.Keys(sp.groups[k].refs.groups)) {
				if gj := sp.groups[j]; gj != nil && !gj.static {
					rf := newRefs()
					rule := map[string]any{"any": []any{map[string]any{"group": k}, g.trigger(sp, smartIndex(j), rf)}}
					g.bad("definitions", groupKey(sp, j), g.groupValue(sp, j, "smart", rule))
					return true
				}
			}
		}
	}
	// A group that references itself.
	id := g.pick(smart)
	rf := newRefs()
	rule := map[string]any{"all": []any{g.trigger(sp, smartIndex(id), rf), map[string]any{"not": map[string]any{"group": id}}}}
	g.bad("definitions", groupKey(sp, id), g.groupValue(sp, id, "smart", rule))
	return true
}

func (g *gen) invGroupTypeChange(sp *spotState) bool {
	ids := slices.Sorted(maps.Keys(sp.groups))
	if len(ids) == 0 {
		return false
	}
	id := g.pick(ids)
	if sp.groups[id].static {
		rf := newRefs()
		g.bad("definitions", groupKey(sp, id), g.groupValue(sp, id, "smart", g.rule(sp, 0, rf)))
	} else {
		g.bad("definitions", groupKey(sp, id), g.groupValue(sp, id, "static", nil))
	}
	return true
}

func (g *gen) invDeleteReferencedGroup(sp *spotState) bool {
	var refd []string
	for _, id := range slices.Sorted(maps.Keys(sp.groups)) {
		if sp.groupReferenced(id) {
			refd = append(refd, id)
		}
	}
	if len(refd) == 0 {
		return false
	}
	g.bad("definitions", groupKey(sp, g.pick(refd)), nil)
	return true
}

func (g *gen) referencedSchemas(sp *spotState) []*schemaState {
	var out []*schemaState
	for _, k := range slices.Sorted(maps.Keys(sp.schemas)) {
		if sp.schemaReferenced(k) {
			out = append(out, sp.schemas[k])
		}
	}
	return out
}

// pickReferencedSchema picks a schema some rule references; false when
// there is none.
func (g *gen) pickReferencedSchema(sp *spotState) (*schemaState, bool) {
	refd := g.referencedSchemas(sp)
	if len(refd) == 0 {
		return nil, false
	}
	return refd[g.r.IntN(len(refd))], true
}

func (g *gen) invDeleteReferencedSchema(sp *spotState) bool {
	st, ok := g.pickReferencedSchema(sp)
	if !ok {
		return false
	}
	g.bad("definitions", schemaKey(sp, st.spec), nil)
	return true
}

func (g *gen) invRemoveReferencedOption(sp *spotState) bool {
	for _, st := range g.referencedSchemas(sp) {
		for _, o := range st.options {
			if !sp.optionReferenced(st.key(), o) {
				continue
			}
			var keep []string
			for _, x := range st.options {
				if x != o {
					keep = append(keep, x)
				}
			}
			if len(keep) == 0 {
				keep = []string{g.freshName("opt")}
			}
			g.bad("definitions", schemaKey(sp, st.spec), g.schemaValue(sp, st.spec, st.typ, keep, st.label))
			return true
		}
	}
	return false
}

func (g *gen) invChangeReferencedType(sp *spotState) bool {
	st, ok := g.pickReferencedSchema(sp)
	if !ok {
		return false
	}
	typ := g.pick(valueTypes)
	if typ == st.typ {
		return false
	}
	var opts []string
	if typ == "single_select" || typ == "multi_select" {
		opts = st.options
		if len(opts) == 0 {
			opts = []string{"opt-a"}
		}
	}
	g.bad("definitions", schemaKey(sp, st.spec), g.schemaValue(sp, st.spec, typ, opts, st.label))
	return true
}

func (g *gen) invDefKeyMismatch(sp *spotState) bool {
	id, v, ok := g.smartGroupValue(sp)
	if !ok {
		return false
	}
	switch g.r.IntN(3) {
	case 0:
		v["id"] = id + "x"
	case 1:
		v["spot"] = sp.id + "x"
	default:
		v["kind"] = "property"
	}
	g.bad("definitions", groupKey(sp, id), v)
	return true
}

func (g *gen) invDefBadJSON(sp *spotState) bool {
	values := []any{`{"kind":"group","spot":"` + sp.id + `",`, []any{"group"}, 3.14}
	g.bad("definitions", groupKey(sp, g.pick(sp.smartIDs)), values[g.r.IntN(len(values))])
	return true
}

func (g *gen) invDefBadKey(sp *spotState) bool {
	keys := []*string{
		str(sp.id + "/group"),
		str(sp.id + "/widget/w1"),
		str(sp.id + "/blacklist/" + sp.smartIDs[0]),
		str("/group/g1"),
		nil,
	}
	key := keys[g.r.IntN(len(keys))]
	var v any = map[string]any{"kind": "group", "spot": sp.id, "id": "g1", "type": "static", "name": "x"}
	if key != nil && strings.Contains(*key, "/blacklist/") {
		v = map[string]any{"kind": "blacklist", "spot": sp.id, "group": sp.smartIDs[0]}
	}
	if g.chance(0.3) && key != nil {
		v = nil // a delete with a bad key is invalid too
	}
	g.bad("definitions", key, v)
	return true
}

func (g *gen) invMissingName(sp *spotState) bool {
	id, v, ok := g.smartGroupValue(sp)
	if !ok {
		return false
	}
	if g.chance(0.5) {
		delete(v, "name")
	} else {
		v["name"] = "  "
	}
	g.bad("definitions", groupKey(sp, id), v)
	return true
}

func (g *gen) invSmartWithoutRule(sp *spotState) bool {
	id, ok := g.pickSmartID(sp)
	if !ok {
		return false
	}
	g.bad("definitions", groupKey(sp, id), g.groupValue(sp, id, "smart", nil))
	return true
}

func (g *gen) invStaticWithRule(sp *spotState) bool {
	id := g.pick(staticGroupIDs)
	v := g.groupValue(sp, id, "static", map[string]any{"all": []any{}})
	g.bad("definitions", groupKey(sp, id), v)
	return true
}

func (g *gen) invBadSchema(sp *spotState) bool {
	spec := &schemaCatalogue[g.r.IntN(len(schemaCatalogue))]
	v := g.schemaValue(sp, spec, spec.typ, spec.options, "Bad")
	switch g.r.IntN(5) {
	case 0:
		v["type"] = "single_select"
		delete(v, "options")
	case 1:
		v["type"] = "float"
	case 2:
		v["type"] = "multi_select"
		v["options"] = []map[string]any{{"id": "a", "label": "A"}, {"id": "a", "label": "A again"}}
	case 3:
		v["type"] = "text"
		v["options"] = []map[string]any{{"id": "a", "label": "A"}}
	default:
		v["id"] = ""
	}
	g.bad("definitions", schemaKey(sp, spec), v)
	return true
}

func (g *gen) invBlacklistUnknownGroup(sp *spotState) bool {
	gid, m := g.freshName("g"), g.pick(sp.members)
	g.bad("definitions", str(sp.id+"/blacklist/"+gid+"/"+m), map[string]any{"kind": "blacklist", "spot": sp.id, "group": gid, "member": m})
	return true
}

func (g *gen) invBlacklistStaticGroup(sp *spotState) bool {
	var statics []string
	for _, id := range slices.Sorted(maps.Keys(sp.groups)) {
		if sp.groups[id].static {
			statics = append(statics, id)
		}
	}
	if len(statics) == 0 {
		return false
	}
	gid, m := g.pick(statics), g.pick(sp.members)
	g.bad("definitions", str(sp.id+"/blacklist/"+gid+"/"+m), map[string]any{"kind": "blacklist", "spot": sp.id, "group": gid, "member": m})
	return true
}

// invBadResources defines a group whose resource list is invalid: an
// unknown type, an id listed twice, a missing title or an id with a '/'.
func (g *gen) invBadResources(sp *spotState) bool {
	id := g.pick(staticGroupIDs)
	v := g.groupValue(sp, id, "static", nil)
	r := func(id, typ, title string) map[string]any {
		return map[string]any{"id": id, "type": typ, "title": title}
	}
	switch g.r.IntN(4) {
	case 0:
		v["resources"] = []any{r("live-1", "webinar", "W")}
	case 1:
		v["resources"] = []any{r("live-1", "live", "A"), r("live-1", "course", "B")}
	case 2:
		v["resources"] = []any{map[string]any{"id": "live-1", "type": "live"}}
	default:
		v["resources"] = []any{r("live/1", "live", "A")}
	}
	g.bad("definitions", groupKey(sp, id), v)
	return true
}
