package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/smartgroups/smartgroups/engine/rule"
	"github.com/smartgroups/smartgroups/state"
)

// applyMemberRecord decodes, validates and applies a member record, then
// emits the access changes it causes.
func (t *txn) applyMemberRecord(rec *Record) error {
	t.hist.rec = rec
	if err := t.applyMember(rec); err != nil {
		return err
	}
	return t.flushAccess()
}

// applyMember decodes, validates and applies a member record.
func (t *txn) applyMember(rec *Record) error {
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
	if slices.Contains(deps, "p.static_groups") {
		t.reason = ReasonStaticGroups
		t.markAccess(m)
		t.reason = ReasonRule
	}
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
// The member's in-memory hashes of activity ids answer "new" without a
// store read; a hash that is there is confirmed with the id's key, so a
// collision never drops an activity.
func (t *txn) addActivity(m *member, a *rule.Activity) ([]string, error) {
	typ, known := actTypeIndex[a.Type]
	if !known {
		return nil, fmt.Errorf("engine: activity of unknown type %q", a.Type)
	}
	slot := &m.ss.slots[m.ord]
	if a.ID != "" {
		k := state.ActivityIDKey(m.part, m.spot, m.ord, a.ID)
		h := hashID(a.ID)
		if slot.seenID(h) {
			_, seen, err := t.get(k)
			if err != nil {
				return nil, err
			}
			if seen {
				return nil, nil
			}
		}
		if err := t.set(k, nil); err != nil {
			return nil, err
		}
		slot.addSeen(h)
	}
	m.st.ActN++
	m.st.ActTypes |= activityBit(a.Type)
	if err := t.set(state.ActivityKey(m.part, m.spot, m.ord, a.Type, a.TS, m.st.ActN), []byte(a.Resource)); err != nil {
		return nil, err
	}
	slot.addAct(actEntry{ts: a.TS, n: m.st.ActN, res: m.ss.res.intern(a.Resource), typ: typ})
	m.actsOK &^= 1 << typ
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
	timeEvaluated, err := t.evaluateGroups(m, sd, groups)
	if err != nil || !timeEvaluated {
		return err
	}
	if t.act != nil {
		return t.rescheduleAfterActivity(m, sd, t.act)
	}
	return t.rescheduleTimer(m, sd)
}

// evaluateGroups evaluates an eligible member's groups (and, when one
// flips, the groups that depend on it) and flips the memberships that
// changed; timeEvaluated says whether a time-dependent group was among
// them, so that the caller reschedules the member's timer.
func (t *txn) evaluateGroups(m *member, sd *SpotDefs, groups []string) (timeEvaluated bool, err error) {
	// Ranks to evaluate, ascending; dependants always rank after the group
	// they depend on, so they are inserted ahead of the cursor.
	// Scratch space, taken while in use (a nested call allocates its own).
	pending := t.pending[:0]
	t.pending = nil
	if len(groups) > 0 && len(groups) == len(sd.order) && &groups[0] == &sd.order[0] {
		for r := range sd.order {
			pending = append(pending, r)
		}
	} else {
		for _, g := range groups {
			if r, ok := sd.rank[g]; ok {
				pending = append(pending, r)
			}
		}
		slices.Sort(pending)
	}
	defer func() { t.pending = pending }()
	for i := 0; i < len(pending); i++ {
		if i > 0 && pending[i] == pending[i-1] {
			continue
		}
		rg := &sd.ranked[pending[i]]
		timeEvaluated = timeEvaluated || rg.compiled.TimeDependent
		want := false
		if len(sd.Blacklist) == 0 || !sd.Blacklist[rg.id][m.st.ID] {
			t.evals++
			v, err := rule.Eval(rg.compiled, m, t.e.now)
			if err != nil {
				return false, err
			}
			want = v
		}
		if want == m.InSmartGroup(rg.id) {
			continue
		}
		if err := t.flipTerm(m, rg.id, rg.term, want); err != nil {
			return false, err
		}
		for _, r := range rg.dependents {
			j, _ := slices.BinarySearch(pending[i+1:], r)
			pending = slices.Insert(pending, i+1+j, r)
		}
	}
	return timeEvaluated, nil
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
				delete(t.e.parts[part].black, blackEntry{spot, g, id})
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
	// The member loses access to everything before its state goes.
	m.erasing = true
	t.markAccess(m)
	if err := t.flushAccess(); err != nil {
		return err
	}
	if err := t.saveSeqs(m); err != nil {
		return err
	}
	if err := t.saveAccessSeqs(m); err != nil {
		return err
	}
	terms := m.terms()
	slot := &m.ss.slots[m.ord]
	actKeys := make([][]byte, 0, len(slot.acts))
	for _, a := range slot.acts {
		typ := actTypeNames[a.typ]
		terms = append(terms, termActivity(typ))
		if a.res != 0 {
			terms = append(terms, termActivityResource(typ, m.ss.res.name(a.res)))
		}
		actKeys = append(actKeys, state.ActivityKey(part, spot, m.ord, typ, a.ts, a.n))
	}
	terms = append(terms, termAll)
	slices.Sort(terms)
	for _, term := range slices.Compact(terms) {
		if err := t.postRemove(part, spot, term, m.ord); err != nil {
			return err
		}
	}
	if m.st.Timer != nil {
		// Stores of earlier versions kept a key per timer besides the
		// state: erasure deletes it.
		if err := t.del(state.TimerKey(part, *m.st.Timer, spot, m.ord)); err != nil {
			return err
		}
		t.e.timers.Add(-1)
	}
	// The activity keys are known from the log; the activity ids are not
	// kept in memory, so the changelog's deletes of their keys come from a
	// scan (erasing is rare).
	ap := state.ActivityPrefix(part, spot, m.ord, "")
	if err := t.delKnownRange(ap, state.PrefixEnd(ap), actKeys); err != nil {
		return err
	}
	ip := state.ActivityIDPrefix(part, spot, m.ord)
	if err := t.delRange(ip, state.PrefixEnd(ip)); err != nil {
		return err
	}
	if err := t.eraseHistory(m); err != nil {
		return err
	}
	if err := t.del(state.MemberKey(part, spot, m.ord)); err != nil {
		return err
	}
	if err := t.del(state.MemberIDKey(part, spot, id)); err != nil {
		return err
	}
	delete(t.members, memberRef{part, spot, m.ord})
	m.ss.ids.del(id)
	ps := t.e.parts[part]
	ps.setTimer(m.ss, m.ord, noTimer)
	*slot = memSlot{due: noTimer}
	t.e.reuse(m)
	t.e.liveMembers.Add(-1)
	return nil
}
