package engine

import (
	"encoding/json"
	"slices"

	"github.com/smartgroups/smartgroups/engine/rule"
	"github.com/smartgroups/smartgroups/state"
)

// member is a member loaded into a transaction; it implements MemberView.
type member struct {
	t     *txn
	part  int32
	spot  string
	ord   uint32
	st    *MemberState
	dirty bool
	acts  map[string][]rule.Activity
	// partial: loaded for a read query without the activity bookkeeping
	// (ActN, ActTypes), so Activities always reads the store.
	partial bool
}

// activityBits maps an activity type to its bit in MemberState.ActTypes.
var activityBits = func() map[string]uint32 {
	m := make(map[string]uint32, len(rule.ActivityTypes))
	for i, t := range rule.ActivityTypes {
		m[t] = 1 << uint(i)
	}
	return m
}()

// activityBit is the ActTypes bit of a type (0 for an unknown type, which
// never matches a stored activity).
func activityBit(typ string) uint32 { return activityBits[typ] }

func (m *member) Profile() *rule.Profile { return &m.st.Profile }

func (m *member) Custom(id string) (json.RawMessage, bool) {
	v, ok := m.st.Custom[id]
	return v, ok
}

func (m *member) Form(id string) (json.RawMessage, bool) {
	v, ok := m.st.Form[id]
	return v, ok
}

func (m *member) LastActivity() (rule.Millis, bool) {
	if m.st.LastAct == nil {
		return 0, false
	}
	return *m.st.LastAct, true
}

func (m *member) Activities(typ string) ([]rule.Activity, error) {
	if a, ok := m.acts[typ]; ok {
		return a, nil
	}
	if !m.partial && (m.st.ActN == 0 || (m.st.ActTypes != 0 && m.st.ActTypes&activityBit(typ) == 0)) {
		return nil, nil // none of that type: no need to look
	}
	prefix := state.ActivityPrefix(m.part, m.spot, m.ord, typ)
	var out []rule.Activity
	err := m.t.b.Scan(prefix, state.PrefixEnd(prefix), func(k, v []byte) bool {
		out = append(out, rule.Activity{Type: typ, TS: state.ActivityTS(k, len(prefix)), Resource: string(v)})
		return true
	})
	if err != nil {
		return nil, err
	}
	if m.acts == nil {
		m.acts = map[string][]rule.Activity{}
	}
	m.acts[typ] = out
	return out, nil
}

func (m *member) InSmartGroup(id string) bool {
	_, ok := slices.BinarySearch(m.st.Groups, id)
	return ok
}

func (m *member) eligible() bool { return rule.Eligible(m.st.Profile.StatusValue()) }

func (m *member) setGroup(id string, in bool) {
	g := m.st.Groups
	i, has := slices.BinarySearch(g, id)
	switch {
	case in && !has:
		g = slices.Insert(g, i, id)
	case !in && has:
		g = slices.Delete(g, i, i+1)
	}
	m.st.Groups = g
	m.dirty = true
}

type memberRef struct {
	part int32
	spot string
	ord  uint32
}

type idRef struct {
	part   int32
	spot   string
	member string
}
