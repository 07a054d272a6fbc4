package reference

import (
	"encoding/json"
	"sort"

	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/engine/rule"
)

// Model is the naive reference evaluator. The zero value is not usable; call
// New.
type Model struct {
	now        rule.Millis
	eventClock bool
	lim        engine.Limits

	// defs is used for definition validity (Check, Apply) and for looking up
	// the current groups and schemas, never for member state or evaluation.
	defs *engine.Defs

	// members: spot -> member id -> state.
	members map[string]map[string]*member
	// blacklist: spot -> group -> member -> true.
	blacklist map[string]map[string]map[string]bool

	dead     []Rejection
	problems map[string]bool
}

// member is everything the model knows about one member of one spot.
type member struct {
	profile    rule.Profile
	custom     map[string]json.RawMessage // property id -> raw value
	form       map[string]json.RawMessage // question id -> raw value
	activities []rule.Activity
}

// New returns an empty model whose clock starts at now. With eventClock, the
// clock then follows the largest ts of the member records applied.
func New(now rule.Millis, eventClock bool) *Model {
	lim := engine.DefaultLimits()
	return &Model{
		now:        now,
		eventClock: eventClock,
		lim:        lim,
		defs:       engine.NewDefs(lim),
		members:    map[string]map[string]*member{},
		blacklist:  map[string]map[string]map[string]bool{},
		problems:   map[string]bool{},
	}
}

// Now returns the model's current instant.
func (m *Model) Now() rule.Millis { return m.now }

// Rejection is a record the model dead-lettered, with the engine's reason.
type Rejection struct {
	Offset int64
	Code   engine.Code
	Reason string
}

// DeadLettered returns the offsets of the records the model rejected, in the
// order they were applied.
func (m *Model) DeadLettered() []int64 {
	out := make([]int64, len(m.dead))
	for i, r := range m.dead {
		out[i] = r.Offset
	}
	return out
}

// Rejections returns the records the model rejected, with reasons, in the
// order they were applied.
func (m *Model) Rejections() []Rejection { return append([]Rejection(nil), m.dead...) }

func (m *Model) reject(rec engine.Record, e *engine.RecordError) {
	m.dead = append(m.dead, Rejection{Offset: rec.Offset, Code: e.Code, Reason: e.Reason})
}

// Apply applies one record. rec.Kind is the logical topic. An invalid record
// is dead-lettered (see DeadLettered) and changes nothing.
func (m *Model) Apply(rec engine.Record) {
	if rec.Kind == engine.KindDefinitions {
		m.applyDefinition(rec)
		return
	}
	c, rerr := engine.DecodeMember(rec, m.lim, m.defs)
	if rerr != nil {
		m.reject(rec, rerr)
		return
	}
	if m.eventClock && !rec.Tombstone() && c.TS > m.now {
		m.now = c.TS
	}
	if c.Erase {
		m.erase(c.Spot, c.Member)
		return
	}
	mem := m.member(c.Spot, c.Member)
	switch c.Kind {
	case engine.KindProfiles:
		c.Profile.Apply(&mem.profile)
	case engine.KindActivities:
		a := *c.Activity
		if a.ID != "" {
			for _, old := range mem.activities {
				if old.ID == a.ID {
					return // a producer retry: ignored
				}
			}
		}
		mem.activities = append(mem.activities, a)
	case engine.KindProperties:
		mergeValues(mem.custom, c.Custom)
		mergeValues(mem.form, c.Form)
	}
}

func mergeValues(dst, patch map[string]json.RawMessage) {
	for id, v := range patch {
		if v == nil || string(v) == "null" {
			delete(dst, id)
			continue
		}
		dst[id] = append(json.RawMessage(nil), v...)
	}
}

func (m *Model) member(spot, id string) *member {
	ms := m.members[spot]
	if ms == nil {
		ms = map[string]*member{}
		m.members[spot] = ms
	}
	mem := ms[id]
	if mem == nil {
		mem = &member{custom: map[string]json.RawMessage{}, form: map[string]json.RawMessage{}}
		ms[id] = mem
	}
	return mem
}

func (m *Model) erase(spot, id string) {
	delete(m.members[spot], id)
	for _, byMember := range m.blacklist[spot] {
		delete(byMember, id)
	}
}

func (m *Model) applyDefinition(rec engine.Record) {
	c, rerr := engine.DecodeDefinition(rec, m.lim)
	if rerr == nil {
		rerr = m.defs.Check(c)
	}
	if rerr != nil {
		m.reject(rec, rerr)
		return
	}
	m.defs.Apply(c)
	switch c.Kind {
	case "group":
		if c.Delete {
			if bl := m.blacklist[c.Spot]; bl != nil {
				delete(bl, c.ID)
			}
		}
	case "blacklist":
		bl := m.blacklist[c.Spot]
		if bl == nil {
			bl = map[string]map[string]bool{}
			m.blacklist[c.Spot] = bl
		}
		if c.Delete {
			delete(bl[c.ID], c.Member)
			return
		}
		if bl[c.ID] == nil {
			bl[c.ID] = map[string]bool{}
		}
		bl[c.ID][c.Member] = true
	}
}

// Memberships returns the keys "<spot>/<group>/<member>" of every member of
// every smart group at the model's current instant, computed from scratch.
func (m *Model) Memberships() map[string]bool {
	out := map[string]bool{}
	for spot, ms := range m.members {
		sd := m.defs.Spot(spot)
		if sd == nil {
			continue
		}
		for gid, g := range sd.Groups {
			if g.Type != engine.GroupSmart {
				continue
			}
			for id, mem := range ms {
				if m.safeInSmartGroup(spot, gid, id, mem) {
					out[spot+"/"+gid+"/"+id] = true
				}
			}
		}
	}
	return out
}

// safeInSmartGroup is inSmartGroup that turns an oracleError into a recorded
// problem and a "not a member" answer.
func (m *Model) safeInSmartGroup(spot, gid, id string, mem *member) (in bool) {
	defer func() {
		if r := recover(); r != nil {
			msg, ok := r.(oracleError)
			if !ok {
				panic(r)
			}
			m.problems[spot+"/"+gid+": "+string(msg)] = true
			in = false
		}
	}()
	return m.inSmartGroup(spot, gid, id, mem)
}

// Problems returns, sorted, what the model met in rules that the engine's
// rule compiler accepted but SPEC does not allow (an operand of the wrong
// shape, say), as "<spot>/<group>: <what>". The pairs concerned were
// reported as non-members. A model-based test should expect none.
func (m *Model) Problems() []string {
	out := make([]string, 0, len(m.problems))
	for p := range m.problems {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Members returns the ids of the members the model knows in a spot, sorted.
func (m *Model) Members(spot string) []string {
	var out []string
	for id := range m.members[spot] {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// eligible is SPEC §2.1: only these statuses can be in a smart group.
func eligible(p *rule.Profile) bool {
	if p.Status == nil {
		return false
	}
	switch *p.Status {
	case "accepted", "invited", "pending":
		return true
	}
	return false
}

// inSmartGroup is SPEC §2.4: the group exists and is smart, the member is
// eligible, not blacklisted, and the rule is true now.
func (m *Model) inSmartGroup(spot, gid, id string, mem *member) bool {
	sd := m.defs.Spot(spot)
	if sd == nil {
		return false
	}
	g := sd.Groups[gid]
	if g == nil || g.Type != engine.GroupSmart || g.Compiled() == nil {
		return false
	}
	if !eligible(&mem.profile) {
		return false
	}
	if m.blacklist[spot][gid][id] {
		return false
	}
	e := &evaluator{m: m, spot: spot, id: id, mem: mem, now: m.now}
	return e.node(g.Compiled().Root)
}
