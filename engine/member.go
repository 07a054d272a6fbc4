package engine

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/smartgroups/smartgroups/engine/rule"
)

// member is a member loaded into a transaction; it implements MemberView.
// Its state is decoded into buf (the output seqs into buf.seqs, sorted by
// group; st.Seqs is unused) from the binary state in the partition's
// memory, and members are reused once a transaction is done with them.
type member struct {
	t     *txn
	part  int32
	spot  string
	ss    *spotState
	ord   uint32
	st    *MemberState
	dirty bool
	buf   stateBuf
	// blob is the state encoded at commit.
	blob []byte
	// acts are the activity lists returned by Activities, by type index,
	// valid where actsOK has the type's bit.
	acts   [numActTypes][]rule.Activity
	actsOK uint32
	// accMarked: queued for the access recomputation (access.go), with
	// the cause of the first change; erasing: being erased, so it has
	// access to nothing.
	accMarked bool
	erasing   bool
	accReason Reason
	accTS     rule.Millis
	// hist holds the history entries of the member's transitions in this
	// transaction, the first numbered histFirst: written at commit as one
	// history key (history.go).
	hist      []byte
	histFirst uint64
}

// newMember returns an empty member of a transaction, reusing a free one.
func (e *Engine) newMember(t *txn, part int32, ss *spotState, ord uint32) *member {
	var m *member
	if n := len(e.free); n > 0 {
		m = e.free[n-1]
		e.free[n-1] = nil
		e.free = e.free[:n-1]
		m.buf.reset()
		for i := range m.acts {
			clear(m.acts[i])
			m.acts[i] = m.acts[i][:0]
		}
	} else {
		m = &member{}
	}
	m.t, m.part, m.spot, m.ss, m.ord, m.dirty, m.blob, m.actsOK = t, part, ss.name, ss, ord, false, nil, 0
	m.accMarked, m.erasing = false, false
	m.hist, m.histFirst = nil, 0
	m.st = &m.buf.st
	return m
}

// maxFree bounds the members kept for reuse: a backfill that changes a
// million members must not keep a million buffers afterwards.
const maxFree = 4096

// reuse keeps a member a transaction is done with for a later one.
func (e *Engine) reuse(m *member) {
	if len(e.free) < maxFree {
		m.t, m.ss = nil, nil
		e.free = append(e.free, m)
	}
}

// nextSeq increments and returns the output seq of the member's key of a
// group, noting since as when the member joined when the seq becomes odd
// (0: not kept).
func (m *member) nextSeq(group string, since rule.Millis) uint64 {
	seqs := m.buf.seqs
	i, ok := slices.BinarySearchFunc(seqs, group, func(s groupSeq, g string) int { return strings.Compare(s.group, g) })
	if !ok {
		seqs = slices.Insert(seqs, i, groupSeq{group: group})
		m.buf.seqs = seqs
	}
	seqs[i].seq++
	seqs[i].since = 0
	if seqs[i].seq%2 == 1 {
		seqs[i].since = since
	}
	return seqs[i].seq
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

// Activities returns the member's activities of a type from the
// in-memory log, sorted by ts then arrival, in a list the member reuses.
func (m *member) Activities(typ string) ([]rule.Activity, error) {
	k, known := actTypeIndex[typ]
	if !known {
		return nil, nil
	}
	if m.actsOK&(1<<k) != 0 {
		return m.acts[k], nil
	}
	s := &m.ss.slots[m.ord]
	lo, hi := s.typeRange(k)
	out := m.acts[k][:0]
	for _, a := range s.acts[lo:hi] {
		out = append(out, rule.Activity{Type: actTypeNames[k], TS: a.ts, Resource: m.ss.res.name(a.res)})
	}
	m.acts[k] = out
	m.actsOK |= 1 << k
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
	m.t.markAccess(m)
}

type memberRef struct {
	part int32
	spot string
	ord  uint32
}
