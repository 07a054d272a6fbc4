package engine

import (
	"slices"
	"strconv"
	"strings"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/smartgroups/smartgroups/engine/rule"
	"github.com/smartgroups/smartgroups/state"
)

// Access to linked resources (SPEC §2.4, §4.3).
//
// A member has access to resource r exactly when one of their groups lists
// r: a smart group they are in (MemberState.Groups) or a static group they
// list in static_groups. The access itself is not stored: like a
// membership, it is the parity of the member's last access-event seq of r
// (odd: access), kept in the member's binary state sorted by resource.
//
// Whatever changes a member's groups (a flip, a static_groups change) marks
// the member; at the end of the record, timer run or reconciliation the
// marked members' access is recomputed from their groups and the
// differences become AccessEvents, so that a member moving between two
// groups that list the same resource within one record emits nothing. A
// change of a group's resource list (or its deletion) is reconciled per
// partition like a group definition, with the fingerprint of the list
// ('R' keys): the members of the group are recomputed once.

// AccessOp is an access change direction.
type AccessOp string

// Access change ops.
const (
	OpGrant  AccessOp = "grant"
	OpRevoke AccessOp = "revoke"
)

// Reasons of access changes that are not membership changes (the
// smartgroups_access_changes_total reason label; access events carry no
// reason).
const (
	// ReasonStaticGroups: the member's static_groups changed.
	ReasonStaticGroups Reason = "static_groups"
	// ReasonResources: a group's resource list changed.
	ReasonResources Reason = "resources"
)

// accessReasons are the reason labels of smartgroups_access_changes_total.
var accessReasons = []Reason{ReasonRule, ReasonTime, ReasonEligibility, ReasonBlacklist, ReasonDefinition,
	ReasonGroupDeleted, ReasonErased, ReasonStaticGroups, ReasonResources}

// initAccessChanges creates every series of the access-change counter at
// zero, so that dashboards and alerts see them before the first change.
func initAccessChanges(c *prometheus.CounterVec) {
	for _, op := range []AccessOp{OpGrant, OpRevoke} {
		for _, r := range accessReasons {
			c.WithLabelValues(string(op), string(r))
		}
	}
}

// AccessEvent is one access change, the value of an output record keyed
// "<spot>/<resource>/<member>" (SPEC §4.3). Groups are the groups giving
// access after the change (empty for a revoke). Partition and Reason are
// not serialized.
type AccessEvent struct {
	Spot      string   `json:"spot"`
	Resource  string   `json:"resource"`
	Member    string   `json:"member"`
	Op        AccessOp `json:"op"`
	TS        string   `json:"ts"`
	Groups    []string `json:"groups"`
	Seq       uint64   `json:"seq"`
	Partition int32    `json:"-"`
	Reason    Reason   `json:"-"`
}

// Key is the output record key "<spot>/<resource>/<member>".
func (e AccessEvent) Key() string { return e.Spot + "/" + e.Resource + "/" + e.Member }

// AppendAccessEventJSON appends the JSON of an access event: the bytes
// encoding/json.Marshal produces, without reflection.
func AppendAccessEventJSON(b []byte, e *AccessEvent) []byte {
	b = append(b, `{"spot":`...)
	b = appendJSONStringHTML(b, e.Spot)
	b = append(b, `,"resource":`...)
	b = appendJSONStringHTML(b, e.Resource)
	b = append(b, `,"member":`...)
	b = appendJSONStringHTML(b, e.Member)
	b = append(b, `,"op":`...)
	b = appendJSONStringHTML(b, string(e.Op))
	b = append(b, `,"ts":`...)
	b = appendJSONStringHTML(b, e.TS)
	b = append(b, `,"groups":[`...)
	for i, g := range e.Groups {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONStringHTML(b, g)
	}
	b = append(b, `],"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	return append(b, '}')
}

// markAccess queues a member whose groups changed for the access
// recomputation at the end of the current record; the first cause is kept.
func (t *txn) markAccess(m *member) {
	if m.accMarked {
		return
	}
	m.accMarked, m.accReason, m.accTS = true, t.reason, t.ts
	t.accQueue = append(t.accQueue, m)
}

// flushAccess recomputes the access of the marked members, in the order
// they were marked.
func (t *txn) flushAccess() error {
	for i, m := range t.accQueue {
		m.accMarked = false
		if err := t.syncAccess(m, m.accReason, m.accTS); err != nil {
			return err
		}
		t.accQueue[i] = nil
	}
	t.accQueue = t.accQueue[:0]
	return nil
}

// hasAccess reports whether a member has access to any resource.
func hasAccess(seqs []groupSeq) bool {
	return slices.ContainsFunc(seqs, func(s groupSeq) bool { return s.seq%2 == 1 })
}

// syncAccess brings a member's access in line with its groups (none for a
// member being erased) and emits the differences.
func (t *txn) syncAccess(m *member, reason Reason, ts rule.Millis) error {
	sd := t.e.defs.Spot(m.spot)
	resources := sd != nil && sd.hasResources && !m.erasing
	if !resources && !hasAccess(m.st.accessSeqs) {
		return nil
	}
	var want map[string][]string
	if resources {
		want = sd.Access(m.st.Groups, m.st.Profile.StaticGroups)
	}
	var change []string
	for _, s := range m.st.accessSeqs {
		if _, ok := want[s.group]; s.seq%2 == 1 && !ok {
			change = append(change, s.group)
		}
	}
	for r := range want {
		if !m.accessOf(r) {
			change = append(change, r)
		}
	}
	if len(change) == 0 {
		return nil
	}
	slices.Sort(change)
	if ts == noTS {
		ts = t.e.now
	}
	tsText := rule.FormatMillis(ts)
	for _, r := range change {
		groups, grant := want[r]
		op := OpRevoke
		if grant {
			op = OpGrant
		} else {
			groups = []string{}
		}
		seq := m.nextAccessSeq(r)
		t.access = append(t.access, AccessEvent{Spot: m.spot, Resource: r, Member: m.st.ID, Op: op, TS: tsText,
			Groups: groups, Seq: seq, Partition: m.part, Reason: reason})
		t.e.metrics.AccessChanges.WithLabelValues(string(op), string(reason)).Inc()
	}
	m.dirty = true
	return nil
}

// accessOf reports whether the member has access to resource r.
func (m *member) accessOf(r string) bool {
	seqs := m.st.accessSeqs
	i, ok := slices.BinarySearchFunc(seqs, r, func(s groupSeq, r string) int { return strings.Compare(s.group, r) })
	return ok && seqs[i].seq%2 == 1
}

// nextAccessSeq increments and returns the access seq of resource r.
func (m *member) nextAccessSeq(r string) uint64 {
	seqs := m.st.accessSeqs
	i, ok := slices.BinarySearchFunc(seqs, r, func(s groupSeq, r string) int { return strings.Compare(s.group, r) })
	if !ok {
		seqs = slices.Insert(seqs, i, groupSeq{group: r})
		m.st.accessSeqs = seqs
	}
	seqs[i].seq++
	return seqs[i].seq
}

// reconcileResources recomputes the access of the members of every group
// of a spot whose resource list partition p does not reflect yet (a
// changed, new or deleted list), then records the lists reflected.
func (t *txn) reconcileResources(p int32, spot string) error {
	ps, err := t.partState(p)
	if err != nil {
		return err
	}
	applied := ps.appliedRes[spot]
	sd := t.e.defs.Spot(spot)
	var groups []string
	for g := range applied {
		groups = append(groups, g)
	}
	if sd != nil {
		groups = append(groups, sd.resourceGroups()...)
	}
	slices.Sort(groups)
	for _, g := range slices.Compact(groups) {
		var def *GroupDef
		if sd != nil {
			def = sd.Groups[g]
		}
		fp := resourceFingerprint(def)
		if applied[g] == fp {
			continue
		}
		reason := ReasonResources
		if def == nil {
			reason = ReasonGroupDeleted
		}
		if err := t.syncGroupAccess(p, spot, g, reason); err != nil {
			return err
		}
		key := state.AppliedResourcesKey(p, spot, g)
		if fp == "" {
			err = t.del(key)
			delete(applied, g)
		} else {
			err = t.set(key, []byte(fp))
			if applied == nil {
				applied = map[string]string{}
				ps.appliedRes[spot] = applied
			}
			applied[g] = fp
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// syncGroupAccess recomputes the access of the members of group g in
// partition p: those in it as a smart group and those listing it as a
// static one.
func (t *txn) syncGroupAccess(p int32, spot, g string, reason Reason) error {
	smart, err := t.posting(p, spot, termSmartGroup(g))
	if err != nil {
		return err
	}
	static, err := t.posting(p, spot, termStaticGroup(g))
	if err != nil {
		return err
	}
	it := roaring.Or(smart, static).Iterator()
	for it.HasNext() {
		m, err := t.memberByOrd(p, spot, it.Next())
		if err != nil {
			return err
		}
		if m == nil {
			continue
		}
		if err := t.syncAccess(m, reason, noTS); err != nil {
			return err
		}
		t.release(m)
	}
	return nil
}

// accessOutbox adds the transaction's access events to the outbox entries
// of their partitions, in order.
func (t *txn) accessOutbox(entry func(int32) *OutboxEntry) {
	for i := range t.access {
		o := entry(t.access[i].Partition)
		o.Access = append(o.Access, t.access[i])
	}
}

// erasedAccessPrefix starts the group part of an 's' key that holds an
// access seq of an erased member (ids never contain NUL).
const erasedAccessPrefix = "\x00"

// saveAccessSeqs keeps an erased member's access seqs, so that they keep
// increasing by one per key if the member reappears.
func (t *txn) saveAccessSeqs(m *member) error {
	if len(m.st.accessSeqs) == 0 {
		return nil
	}
	saved := make([]groupSeq, len(m.st.accessSeqs))
	for i, s := range m.st.accessSeqs {
		saved[i] = groupSeq{group: strings.Clone(s.group), seq: s.seq}
		if err := t.set(state.SeqKey(m.part, m.spot, m.st.ID, erasedAccessPrefix+s.group), state.EncodeU64(s.seq)); err != nil {
			return err
		}
	}
	m.ss.erasedAccess[strings.Clone(m.st.ID)] = saved
	return nil
}

// restoreAccessSeqs brings back the access seqs of an erased member that
// reappears.
func (t *txn) restoreAccessSeqs(m *member) error {
	id := m.st.ID
	seqs, found := m.ss.erasedAccess[id]
	if !found {
		return nil
	}
	m.st.accessSeqs = append(m.st.accessSeqs[:0], seqs...)
	delete(m.ss.erasedAccess, id)
	for _, s := range seqs {
		if err := t.del(state.SeqKey(m.part, m.spot, id, erasedAccessPrefix+s.group)); err != nil {
			return err
		}
	}
	return nil
}
