package engine

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"sort"

	"github.com/smartgroups/smartgroups/engine/rule"
	"github.com/smartgroups/smartgroups/state"
)

// applyMemberRecord decodes, validates and applies a member record.
func (t *txn) applyMemberRecord(rec *Record) error {
	mc, rerr := DecodeMember(*rec, t.e.cfg.Limits, t.e.defs)
	if rerr != nil {
		t.deadLetter(rec, rerr)
		return nil
	}
	if mc.Unknown > 0 {
		t.e.metrics.UnknownFields.WithLabelValues(string(rec.Kind)).Add(float64(mc.Unknown))
	}
	if t.e.cfg.Clock == ClockEvent && mc.TS != noTS && mc.TS > t.e.now {
		if err := t.advance(mc.TS); err != nil {
			return err
		}
	}
	part := rec.Partition
	t.ts = mc.TS
	if mc.Erase {
		t.reason = ReasonErased
		return t.erase(part, mc.Spot, mc.Member)
	}
	t.reason = ReasonRule
	m, err := t.memberByID(part, mc.Spot, mc.Member, true)
	if err != nil {
		return err
	}
	wasEligible := m.eligible()
	// Activities maintain their own terms; profile and value changes are
	// diffed against the member's terms before the change.
	var oldTerms []string
	if mc.Activity == nil {
		oldTerms = m.terms()
	}
	var deps []string
	switch {
	case mc.Profile != nil:
		for _, f := range mc.Profile.Apply(&m.st.Profile) {
			deps = append(deps, "p."+f)
		}
	case mc.Activity != nil:
		d, err := t.addActivity(m, mc.Activity)
		if err != nil {
			return err
		}
		deps = d
	default:
		deps = append(deps, mergeValues(&m.st.Custom, mc.Custom, "c.")...)
		deps = append(deps, mergeValues(&m.st.Form, mc.Form, "f.")...)
	}
	if len(deps) == 0 {
		return nil
	}
	m.dirty = true
	if mc.Activity == nil {
		if err := t.updateTerms(m, oldTerms, m.terms()); err != nil {
			return err
		}
	}
	sd := t.e.defs.Spot(mc.Spot)
	if sd == nil {
		return nil
	}
	eligChanged := wasEligible != m.eligible()
	var groups []string
	if eligChanged {
		t.reason = ReasonEligibility
		groups = sd.order
	} else {
		groups = readersOf(sd, deps)
		// Only the new activity can have added flip instants.
		t.act = mc.Activity
		defer func() { t.act = nil }()
	}
	return t.reevaluate(m, sd, groups)
}

// mergeValues applies a merge patch of custom values or form answers and
// returns the dependency keys of the ids whose value changed.
func mergeValues(dst *map[string]json.RawMessage, patch map[string]json.RawMessage, prefix string) []string {
	var deps []string
	for id, v := range patch {
		old, had := (*dst)[id]
		if v == nil {
			if had {
				delete(*dst, id)
				deps = append(deps, prefix+id)
			}
			continue
		}
		if had && bytes.Equal(old, v) {
			continue
		}
		if *dst == nil {
			*dst = map[string]json.RawMessage{}
		}
		(*dst)[id] = v
		deps = append(deps, prefix+id)
	}
	slices.Sort(deps)
	return deps
}

// addActivity stores an activity unless its id was seen; returns deps.
func (t *txn) addActivity(m *member, a *rule.Activity) ([]string, error) {
	if a.ID != "" {
		k := state.ActivityIDKey(m.part, m.spot, m.ord, a.ID)
		_, seen, err := t.b.Get(k)
		if err != nil {
			return nil, err
		}
		if seen {
			return nil, nil
		}
		if err := t.set(k, nil); err != nil {
			return nil, err
		}
	}
	m.st.ActN++
	m.st.ActTypes |= activityBit(a.Type)
	if err := t.set(state.ActivityKey(m.part, m.spot, m.ord, a.Type, a.TS, m.st.ActN), []byte(a.Resource)); err != nil {
		return nil, err
	}
	if acts, ok := m.acts[a.Type]; ok {
		// Keep the loaded list in store order: by ts, then arrival.
		i := sort.Search(len(acts), func(i int) bool { return acts[i].TS > a.TS })
		acts = append(acts, rule.Activity{})
		copy(acts[i+1:], acts[i:])
		acts[i] = rule.Activity{Type: a.Type, TS: a.TS, Resource: a.Resource}
		m.acts[a.Type] = acts
	}
	deps := []string{"a." + a.Type}
	if m.st.LastAct == nil || a.TS > *m.st.LastAct {
		ts := a.TS
		m.st.LastAct = &ts
		deps = append(deps, "p.last_activity_at")
	}
	if err := t.postAdd(m.part, m.spot, termActivity(a.Type), m.ord); err != nil {
		return nil, err
	}
	if a.Resource != "" {
		if err := t.postAdd(m.part, m.spot, termActivityResource(a.Type, a.Resource), m.ord); err != nil {
			return nil, err
		}
	}
	return deps, nil
}

func readersOf(sd *SpotDefs, deps []string) []string {
	var out []string
	for _, d := range deps {
		out = append(out, sd.Readers(d)...)
	}
	return out
}

// reevaluate evaluates the given smart groups for a member, then the
// groups depending on any that flipped, in dependency order, and emits
// the flips with the transaction's reason. When a time-dependent group was
// evaluated (directly or through a group trigger), the member's timer is
// recomputed.
func (t *txn) reevaluate(m *member, sd *SpotDefs, groups []string) error {
	if !m.eligible() {
		// Not eligible: in no smart group, whatever the rules say, and no
		// timer until the status changes again.
		for len(m.st.Groups) > 0 {
			if err := t.flip(m, m.st.Groups[0], false); err != nil {
				return err
			}
		}
		if m.st.Timer != nil {
			return t.rescheduleTimer(m, sd)
		}
		return nil
	}
	timeEvaluated := false
	// Ranks to evaluate, ascending; dependants always rank after the group
	// they depend on, so they are inserted ahead of the cursor.
	pending := make([]int, 0, len(groups))
	for _, g := range groups {
		if r, ok := sd.rank[g]; ok {
			pending = append(pending, r)
		}
	}
	slices.Sort(pending)
	for i := 0; i < len(pending); i++ {
		if i > 0 && pending[i] == pending[i-1] {
			continue
		}
		g := sd.order[pending[i]]
		timeEvaluated = timeEvaluated || sd.Groups[g].compiled.TimeDependent
		want := false
		if !sd.Blacklist[g][m.st.ID] {
			t.evals++
			v, err := rule.Eval(sd.Groups[g].compiled, m, t.e.now)
			if err != nil {
				return err
			}
			want = v
		}
		if want == m.InSmartGroup(g) {
			continue
		}
		if err := t.flip(m, g, want); err != nil {
			return err
		}
		for _, d := range sd.dependents[g] {
			if r, ok := sd.rank[d]; ok {
				j, _ := slices.BinarySearch(pending[i+1:], r)
				pending = slices.Insert(pending, i+1+j, r)
			}
		}
	}
	if timeEvaluated {
		if t.act != nil {
			return t.rescheduleAfterActivity(m, sd, t.act)
		}
		return t.rescheduleTimer(m, sd)
	}
	return nil
}

// erase deletes everything about a member; they leave every group.
func (t *txn) erase(part int32, spot, id string) error {
	if sd := t.e.defs.Spot(spot); sd != nil {
		for _, g := range slices.Sorted(maps.Keys(sd.Blacklist)) {
			if sd.Blacklist[g][id] {
				if err := t.deleteDefinition(&DefChange{Spot: spot, Kind: "blacklist", ID: g, Member: id, Delete: true}); err != nil {
					return err
				}
				t.tombs[part] = append(t.tombs[part], spot+"/blacklist/"+g+"/"+id)
				if err := t.del(state.BlacklistKey(part, spot, g, id)); err != nil {
					return err
				}
			}
		}
	}
	m, err := t.memberByID(part, spot, id, false)
	if err != nil || m == nil {
		return err
	}
	for len(m.st.Groups) > 0 {
		if err := t.flip(m, m.st.Groups[0], false); err != nil {
			return err
		}
	}
	if err := t.saveSeqs(m); err != nil {
		return err
	}
	terms := m.terms()
	ap := state.ActivityPrefix(part, spot, m.ord, "")
	err = t.b.Scan(ap, state.PrefixEnd(ap), func(k, v []byte) bool {
		rest := k[len(ap):]
		typ := string(rest[:bytes.IndexByte(rest, 0)])
		terms = append(terms, termActivity(typ))
		if len(v) > 0 {
			terms = append(terms, termActivityResource(typ, string(v)))
		}
		return true
	})
	if err != nil {
		return err
	}
	terms = append(terms, termAll)
	slices.Sort(terms)
	for _, term := range slices.Compact(terms) {
		if err := t.postRemove(part, spot, term, m.ord); err != nil {
			return err
		}
	}
	if m.st.Timer != nil {
		if err := t.del(state.TimerKey(part, *m.st.Timer, spot, m.ord)); err != nil {
			return err
		}
		t.e.timers.Add(-1)
	}
	for _, r := range [][2][]byte{
		{ap, state.PrefixEnd(ap)},
		{state.ActivityIDPrefix(part, spot, m.ord), state.PrefixEnd(state.ActivityIDPrefix(part, spot, m.ord))},
	} {
		if err := t.delRange(r[0], r[1]); err != nil {
			return err
		}
	}
	if err := t.del(state.MemberKey(part, spot, m.ord)); err != nil {
		return err
	}
	if err := t.del(state.MemberIDKey(part, spot, id)); err != nil {
		return err
	}
	delete(t.members, memberRef{part, spot, m.ord})
	delete(t.ords, idRef{part, spot, id})
	// Forget the member in the cross-batch cache now: a later record of
	// this batch must not find the erased state there.
	delete(t.e.cache.states, memberRef{part, spot, m.ord})
	delete(t.e.cache.ords, idRef{part, spot, id})
	t.e.liveMembers.Add(-1)
	return nil
}
