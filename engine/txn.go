package engine

import (
	"fmt"
	"slices"

	"github.com/smartgroups/smartgroups/engine/rule"
	"github.com/smartgroups/smartgroups/state"
)

var _ rule.MemberView = (*member)(nil)

// txn is the work of one Process/Tick/Assign call: a Pebble batch plus
// decoded caches flushed into it at commit.
type txn struct {
	e         *Engine
	b         *state.Batch
	members   map[memberRef]*member
	ords      map[idRef]uint32
	deltas    map[string]*postingDelta
	positions map[posKey]int64
	events    []Event
	dead      []DeadLetter
	deadParts []int32
	nowDirty  bool
	changelog map[int32]*changelog
	tombs     map[int32][]string

	// instants is scratch space for rescheduleTimer.
	instants []rule.Millis
	// tsText is FormatMillis(tsMillis): the flips of one record share it.
	tsMillis rule.Millis
	tsText   string
	// evals counts rule evaluations (reevaluate), added to the metric at
	// commit.
	evals int
	// act is the activity being applied, if the record is one (see
	// rescheduleAfterActivity).
	act *rule.Activity

	// cause of the changes being made
	reason Reason
	ts     rule.Millis
}

func (e *Engine) begin() *txn {
	return &txn{e: e, b: e.st.NewBatch(), members: map[memberRef]*member{}, ords: map[idRef]uint32{},
		deltas: map[string]*postingDelta{}, changelog: map[int32]*changelog{}, tombs: map[int32][]string{}, positions: map[posKey]int64{}}
}

// lookupOrd finds a member's ordinal.
func (t *txn) lookupOrd(part int32, spot, id string) (uint32, bool, error) {
	r := idRef{part, spot, id}
	if o, ok := t.ords[r]; ok {
		return o, true, nil
	}
	if o, ok := t.e.cache.ords[r]; ok {
		t.ords[r] = o
		return o, true, nil
	}
	v, ok, err := t.b.Get(state.MemberIDKey(part, spot, id))
	if err != nil || !ok {
		return 0, false, err
	}
	o := state.DecodeU32(v)
	t.ords[r] = o
	return o, true, nil
}

// memberByID loads a member; with create it allocates a new one.
func (t *txn) memberByID(part int32, spot, id string, create bool) (*member, error) {
	ord, ok, err := t.lookupOrd(part, spot, id)
	if err != nil {
		return nil, err
	}
	if ok {
		return t.memberByOrd(part, spot, ord)
	}
	if !create {
		return nil, nil
	}
	ck := state.OrdCounterKey(part, spot)
	var next uint32
	if v, ok, err := t.b.Get(ck); err != nil {
		return nil, err
	} else if ok {
		next = state.DecodeU32(v)
	}
	if next == ^uint32(0) {
		return nil, fmt.Errorf("engine: spot %q partition %d has allocated every member ordinal", spot, part)
	}
	if err := t.set(ck, state.EncodeU32(next+1)); err != nil {
		return nil, err
	}
	if err := t.set(state.MemberIDKey(part, spot, id), state.EncodeU32(next)); err != nil {
		return nil, err
	}
	t.ords[idRef{part, spot, id}] = next
	m := &member{t: t, part: part, spot: spot, ord: next, st: &MemberState{ID: id}, dirty: true}
	if err := t.restoreSeqs(m); err != nil {
		return nil, err
	}
	t.members[memberRef{part, spot, next}] = m
	if err := t.postAdd(part, spot, termAll, next); err != nil {
		return nil, err
	}
	t.e.liveMembers.Add(1)
	return m, nil
}

func (t *txn) memberByOrd(part int32, spot string, ord uint32) (*member, error) {
	r := memberRef{part, spot, ord}
	if m, ok := t.members[r]; ok {
		return m, nil
	}
	if c, ok := t.e.cache.states[r]; ok {
		m := &member{t: t, part: part, spot: spot, ord: ord, st: c.st, acts: c.acts}
		t.members[r] = m
		return m, nil
	}
	v, ok, err := t.b.Get(state.MemberKey(part, spot, ord))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, nil
	}
	st, err := DecodeMemberState(v)
	if err != nil {
		return nil, fmt.Errorf("engine: member %s#%d: %w", spot, ord, err)
	}
	m := &member{t: t, part: part, spot: spot, ord: ord, st: st}
	t.members[r] = m
	return m, nil
}

// release drops a clean member from the cache (bounded memory in backfills).
func (t *txn) release(m *member) {
	if !m.dirty {
		delete(t.members, memberRef{m.part, m.spot, m.ord})
	}
}

// flip changes a member's membership in a smart group and emits the event.
func (t *txn) flip(m *member, group string, in bool) error {
	m.setGroup(group, in)
	term := termSmartGroup(group)
	var err error
	if in {
		err = t.postAdd(m.part, m.spot, term, m.ord)
	} else {
		err = t.postRemove(m.part, m.spot, term, m.ord)
	}
	if err != nil {
		return err
	}
	if m.st.Seqs == nil {
		m.st.Seqs = map[string]uint64{}
	}
	m.st.Seqs[group]++
	seq := m.st.Seqs[group]
	op := OpRemove
	if in {
		op = OpAdd
	}
	ts := t.ts
	if ts == noTS {
		ts = t.e.now
	}
	if ts != t.tsMillis || t.tsText == "" {
		t.tsMillis, t.tsText = ts, rule.FormatMillis(ts)
	}
	t.events = append(t.events, Event{Spot: m.spot, Group: group, Member: m.st.ID, Op: op,
		TS: t.tsText, Reason: t.reason, Seq: seq, Partition: m.part})
	t.e.metrics.MembershipChanges.WithLabelValues(string(op), string(t.reason)).Inc()
	return nil
}

func (t *txn) deadLetter(rec *Record, e *RecordError) {
	part := rec.Partition
	if rec.Kind == KindDefinitions {
		part = DefPartition
	}
	t.dead = append(t.dead, newDeadLetter(rec, e))
	t.deadParts = append(t.deadParts, part)
	t.e.metrics.DeadLetters.WithLabelValues(string(rec.Kind), string(e.Code)).Inc()
}

// commit flushes caches into the batch, writes the outbox and commits.
func (e *Engine) commit(t *txn) (*Result, error) {
	b := t.b
	for r, m := range t.members {
		if !m.dirty {
			continue
		}
		v, err := EncodeMemberState(m.st)
		if err != nil {
			return nil, e.fail(t, fmt.Errorf("engine: encode member: %w", err))
		}
		if err := t.set(state.MemberKey(r.part, r.spot, r.ord), v); err != nil {
			return nil, e.fail(t, err)
		}
	}
	for k, d := range t.deltas {
		v, err := state.EncodePostingDelta(d.adds, d.removes)
		if err == nil {
			err = b.MergePosting([]byte(k), v)
		}
		if err != nil {
			return nil, e.fail(t, err)
		}
	}
	if e.cfg.Clock == ClockEvent && e.cfg.Changelog {
		// The event clock travels with a partition's state, so a new owner
		// never evaluates it at an earlier instant than the old one did.
		for p := range t.changelog {
			if err := t.set(state.PartitionClockKey(p), state.EncodeI64(e.now)); err != nil {
				return nil, e.fail(t, err)
			}
		}
	}
	for p, off := range t.positions {
		if err := t.set(positionKey(p), state.EncodeI64(off)); err != nil {
			return nil, e.fail(t, err)
		}
	}
	if t.nowDirty {
		if err := b.Set(state.MetaKey(metaNow), state.EncodeI64(e.now)); err != nil {
			return nil, e.fail(t, err)
		}
	}
	res := &Result{Events: t.events, DeadLetters: t.dead}
	byPart := map[int32]*OutboxEntry{}
	var order []int32
	entry := func(p int32) *OutboxEntry {
		o := byPart[p]
		if o == nil {
			o = &OutboxEntry{Partition: p}
			byPart[p] = o
			order = append(order, p)
		}
		return o
	}
	perPart := map[int32]int{}
	for i := range t.events {
		perPart[t.events[i].Partition]++
	}
	for i := range t.events {
		ev := &t.events[i]
		o := entry(ev.Partition)
		if o.Events == nil {
			o.Events = make([]Event, 0, perPart[ev.Partition])
		}
		o.Events = append(o.Events, *ev)
	}
	for i, d := range t.dead {
		o := entry(t.deadParts[i])
		o.DeadLetters = append(o.DeadLetters, d)
	}
	for p, c := range t.changelog {
		o := entry(p)
		o.Changelog = c.entries
	}
	for p, keys := range t.tombs {
		o := entry(p)
		o.DefinitionTombstones = keys
	}
	slices.Sort(order)
	for _, p := range order {
		o := byPart[p]
		id, err := e.allocOutbox(b, p)
		if err != nil {
			return nil, e.fail(t, err)
		}
		o.ID = id
		if err := b.Set(state.OutboxKey(p, id), appendOutboxEntry(make([]byte, 0, outboxEntrySize(o)), o)); err != nil {
			return nil, e.fail(t, err)
		}
		res.Outbox = append(res.Outbox, *o)
	}
	if err := b.Commit(); err != nil {
		return nil, e.fail(t, err)
	}
	for k, d := range t.deltas {
		if bm, ok := e.postings[k]; ok {
			bm.Or(d.adds)
			bm.AndNot(d.removes)
		}
	}
	e.cache.keep(t)
	e.countGroups()
	e.metrics.RuleEvaluations.Add(float64(t.evals))
	return res, nil
}

// allocOutbox allocates the next outbox id of a partition. The counter is
// global (not dropped with the partition's state), so (instance, id) never
// repeats.
func (e *Engine) allocOutbox(b *state.Batch, p int32) (uint64, error) {
	next, ok := e.nextOut[p]
	if !ok {
		v, found, err := b.Get(state.OutboxNextKey(p))
		if err != nil {
			return 0, err
		}
		next = 1
		if found {
			next = state.DecodeU64(v)
		}
	}
	e.nextOut[p] = next + 1
	return next, b.Set(state.OutboxNextKey(p), state.EncodeU64(next+1))
}

// restoreSeqs brings back the output seqs of an erased member that
// reappears, so that seq keeps increasing by one per key.
func (t *txn) restoreSeqs(m *member) error {
	prefix := state.SeqMemberPrefix(m.part, m.spot, m.st.ID)
	var found bool
	err := t.b.Scan(prefix, state.PrefixEnd(prefix), func(k, v []byte) bool {
		if m.st.Seqs == nil {
			m.st.Seqs = map[string]uint64{}
		}
		m.st.Seqs[string(k[len(prefix):])] = state.DecodeU64(v)
		found = true
		return true
	})
	if err != nil || !found {
		return err
	}
	return t.delRange(prefix, state.PrefixEnd(prefix))
}

// saveSeqs keeps an erased member's output seqs.
func (t *txn) saveSeqs(m *member) error {
	for g, seq := range m.st.Seqs {
		if err := t.set(state.SeqKey(m.part, m.spot, m.st.ID, g), state.EncodeU64(seq)); err != nil {
			return err
		}
	}
	return nil
}

// changelog collects a transaction's writes to one partition's state, the
// record that lets another instance restore the partition.
type changelog struct {
	entries []ChangelogEntry
	index   map[string]int
}

// ChangelogEntry is one write to a partition's state.
type ChangelogEntry struct {
	Key    []byte `json:"k"`
	Value  []byte `json:"v,omitempty"`
	Delete bool   `json:"d,omitempty"`
}

// logged reports the partition of a state key that belongs in the
// changelog: partition-scoped, and neither a posting list (rebuilt from
// members on restore) nor the outbox (local publishing bookkeeping).
func logged(key []byte) (int32, bool) {
	part, sub, ok := state.PartitionOfKey(key)
	if !ok {
		return 0, false
	}
	return part, sub != state.SubPosting && sub != state.SubOutbox
}

func (t *txn) record(key, value []byte, del bool) {
	if !t.e.cfg.Changelog {
		return
	}
	p, ok := logged(key)
	if !ok {
		return
	}
	c := t.changelog[p]
	if c == nil {
		c = &changelog{index: map[string]int{}}
		t.changelog[p] = c
	}
	e := ChangelogEntry{Key: append([]byte(nil), key...), Value: value, Delete: del}
	if i, dup := c.index[string(key)]; dup {
		c.entries[i] = e
		return
	}
	c.index[string(key)] = len(c.entries)
	c.entries = append(c.entries, e)
}

// set writes a key in the transaction's batch and changelog.
func (t *txn) set(key, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	t.record(key, append([]byte(nil), value...), false)
	return t.b.Set(key, value)
}

// del deletes a key.
func (t *txn) del(key []byte) error {
	t.record(key, nil, true)
	return t.b.Delete(key)
}

// delRange deletes [lo, hi); the changelog gets one delete per key.
func (t *txn) delRange(lo, hi []byte) error {
	if _, ok := logged(lo); ok {
		err := t.b.Scan(lo, hi, func(k, _ []byte) bool {
			t.record(k, nil, true)
			return true
		})
		if err != nil {
			return err
		}
	}
	return t.b.DeleteRange(lo, hi)
}
