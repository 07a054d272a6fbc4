package engine

import (
	"math"
	"slices"
	"strings"

	"github.com/smartgroups/smartgroups/engine/rule"
)

// partState is the in-memory state of one loaded partition: everything
// the record path, timers, reconciliation, backfills and queries read, so
// that none of them reads the store. It is built by one scan of the
// partition's keys (partload.go) and dropped when the partition is
// revoked, dropped or restored; the store is written as before, in the
// same batch, and stays the durable truth.
type partState struct {
	spots    map[string]*spotState
	spotList []*spotState // by index, for the timer index
	// applied is the fingerprint of each group definition the
	// partition's memberships reflect ('G' keys), by spot and group.
	applied map[string]map[string]string
	// appliedRes is the fingerprint of each group resource list the
	// partition's access reflects ('R' keys), by spot and group.
	appliedRes map[string]map[string]string
	// black holds the blacklist entries reflected here ('B' keys).
	black  map[blackEntry]bool
	timers timerIndex
}

type blackEntry struct{ spot, group, member string }

func newPartState() *partState {
	return &partState{spots: map[string]*spotState{}, applied: map[string]map[string]string{},
		appliedRes: map[string]map[string]string{},
		black:      map[blackEntry]bool{}}
}

// spot returns the state of a spot, created when missing.
func (ps *partState) spot(name string) *spotState {
	ss := ps.spots[name]
	if ss == nil {
		ss = &spotState{name: name, idx: uint32(len(ps.spotList)), res: internTable{ids: map[string]uint32{"": 0}, names: []string{""}},
			erased: map[string][]groupSeq{}, erasedAccess: map[string][]groupSeq{}}
		ps.spots[name] = ss
		ps.spotList = append(ps.spotList, ss)
	}
	return ss
}

// liveMembers counts the partition's members.
func (ps *partState) liveMembers() int64 {
	var n int64
	for _, ss := range ps.spotList {
		n += int64(ss.ids.n)
	}
	return n
}

// spotState is one spot's members in a partition, by ordinal.
type spotState struct {
	name string
	idx  uint32
	ids  idTable
	// next is the next ordinal to allocate ('n').
	next  uint32
	slots []memSlot
	res   internTable
	// erased are the output seqs of erased members ('s' keys), by id.
	erased map[string][]groupSeq
	// erasedAccess are the access seqs of erased members ('s' keys whose
	// group part starts with NUL), by id.
	erasedAccess map[string][]groupSeq
}

// noTimer is memSlot.due of a member without a timer.
const noTimer = math.MinInt64

// memSlot is one member: the binary state (nil for an ordinal without a
// member), the activity log sorted by (type, ts, arrival), the sorted
// hashes of the activity ids seen and the due instant of the timer.
type memSlot struct {
	blob []byte
	acts []actEntry
	seen []uint64
	due  rule.Millis
}

// actEntry is one activity of the in-memory log: the type (an index into
// actTypeNames), the ts, the arrival number that keys it in the store and
// the resource (interned per spot).
type actEntry struct {
	ts  rule.Millis
	n   uint32
	res uint32
	typ uint8
}

// actTypeNames are the activity types in byte order, the order of the
// store's activity keys; an actEntry's type indexes it.
var actTypeNames = func() []string {
	s := slices.Clone(rule.ActivityTypes)
	slices.Sort(s)
	return s
}()

var actTypeIndex = func() map[string]uint8 {
	m := make(map[string]uint8, len(actTypeNames))
	for i, t := range actTypeNames {
		m[t] = uint8(i)
	}
	return m
}()

const numActTypes = 14

// slot returns the slot of an ordinal, growing the slots when needed.
func (ss *spotState) slot(ord uint32) *memSlot {
	for uint32(len(ss.slots)) <= ord {
		ss.slots = append(ss.slots, memSlot{due: noTimer})
	}
	return &ss.slots[ord]
}

// blob returns the state of a member, nil when there is none.
func (ss *spotState) blob(ord uint32) []byte {
	if ord >= uint32(len(ss.slots)) {
		return nil
	}
	return ss.slots[ord].blob
}

// addAct inserts an activity in a member's log, after those of the same
// type and ts.
func (s *memSlot) addAct(a actEntry) {
	i, _ := slices.BinarySearchFunc(s.acts, a, func(x, y actEntry) int {
		switch {
		case x.typ != y.typ:
			return int(x.typ) - int(y.typ)
		case x.ts < y.ts:
			return -1
		case x.ts > y.ts:
			return 1
		case x.n < y.n:
			return -1
		case x.n > y.n:
			return 1
		}
		return 0
	})
	s.acts = slices.Insert(s.acts, i, a)
}

// typeRange returns the range of a type's activities in the log.
func (s *memSlot) typeRange(typ uint8) (int, int) {
	lo, _ := slices.BinarySearchFunc(s.acts, typ, func(a actEntry, t uint8) int { return int(a.typ) - int(t) })
	hi := lo
	for hi < len(s.acts) && s.acts[hi].typ == typ {
		hi++
	}
	return lo, hi
}

// seenID reports whether the hash of an activity id is in the member's set.
func (s *memSlot) seenID(h uint64) bool {
	_, ok := slices.BinarySearch(s.seen, h)
	return ok
}

// addSeen adds an activity id hash to the member's set.
func (s *memSlot) addSeen(h uint64) {
	if i, ok := slices.BinarySearch(s.seen, h); !ok {
		s.seen = slices.Insert(s.seen, i, h)
	}
}

// internTable interns the resource ids of a spot's activities; 0 is "".
type internTable struct {
	ids   map[string]uint32
	names []string
}

func (it *internTable) intern(s string) uint32 {
	if i, ok := it.ids[s]; ok {
		return i
	}
	s = strings.Clone(s)
	i := uint32(len(it.names))
	it.ids[s] = i
	it.names = append(it.names, s)
	return i
}

func (it *internTable) name(i uint32) string { return it.names[i] }
