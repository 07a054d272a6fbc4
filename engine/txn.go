package engine

import (
	"fmt"
	"slices"
	"strings"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/smartgroups/smartgroups/engine/rule"
	"github.com/smartgroups/smartgroups/state"
)

var _ rule.MemberView = (*member)(nil)

// txn is the work of one Process/Tick/Assign call (or a query's read): a
// Pebble batch plus the members it decoded, whose changed states are
// encoded into the batch at commit. Ordinals, activity logs and timers of
// the in-memory partition state are changed as the transaction goes (a
// failed batch makes the Engine unusable); member states and posting
// lists are installed after the commit.
type txn struct {
	e         *Engine
	b         *state.Batch
	members   map[memberRef]*member
	deltas    map[deltaKey]*postingDelta
	positions map[posKey]int64
	events    []Event
	access    []AccessEvent
	accQueue  []*member
	dead      []DeadLetter
	deadParts []int32
	nowDirty  bool
	changelog map[int32]*changelog
	tombs     map[int32][]string

	// due is scratch space for advance; fired counts the timers fired
	// (Config.MaxTimersPerBatch).
	due   []timerEntry
	fired int
	// dueGroups is scratch space for fire, pending for evaluateGroups.
	dueGroups []string
	pending   []int
	// changes counts membership changes per label pair, for the metric.
	changes []changeCount
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
	hist   histCtx
}

func (e *Engine) begin() *txn {
	return &txn{e: e, b: e.st.NewBatch(), members: map[memberRef]*member{},
		deltas: map[deltaKey]*postingDelta{}, changelog: map[int32]*changelog{}, tombs: map[int32][]string{}, positions: map[posKey]int64{}}
}

// partState returns the in-memory state of a loaded partition.
func (t *txn) partState(part int32) (*partState, error) {
	ps := t.e.parts[part]
	if ps == nil {
		return nil, fmt.Errorf("engine: partition %d is not loaded", part)
	}
	return ps, nil
}

// lookupOrd finds a member's ordinal.
func (t *txn) lookupOrd(part int32, spot, id string) (uint32, bool, error) {
	ps, err := t.partState(part)
	if err != nil {
		return 0, false, err
	}
	ss := ps.spots[spot]
	if ss == nil {
		return 0, false, nil
	}
	ord, ok := ss.ids.get(id)
	return ord, ok, nil
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
	ss := t.e.parts[part].spot(spot)
	next := ss.next
	if next == ^uint32(0) {
		return nil, fmt.Errorf("engine: spot %q partition %d has allocated every member ordinal", spot, part)
	}
	if err := t.set(state.OrdCounterKey(part, spot), state.EncodeU32(next+1)); err != nil {
		return nil, err
	}
	if err := t.set(state.MemberIDKey(part, spot, id), state.EncodeU32(next)); err != nil {
		return nil, err
	}
	if err := ss.ids.put(id, next); err != nil {
		return nil, err
	}
	ss.next = next + 1
	ss.slot(next)
	m := t.e.newMember(t, part, ss, next)
	m.dirty = true
	m.st.ID = id
	if err := t.restoreSeqs(m); err != nil {
		return nil, err
	}
	if err := t.restoreAccessSeqs(m); err != nil {
		return nil, err
	}
	t.members[memberRef{part, spot, next}] = m
	if err := t.postAdd(part, spot, termAll, next); err != nil {
		return nil, err
	}
	t.e.liveMembers.Add(1)
	return m, nil
}

// memberByOrd loads a member by ordinal (nil when there is none) from the
// transaction or the in-memory partition state.
func (t *txn) memberByOrd(part int32, spot string, ord uint32) (*member, error) {
	r := memberRef{part, spot, ord}
	if m, ok := t.members[r]; ok {
		return m, nil
	}
	ps, err := t.partState(part)
	if err != nil {
		return nil, err
	}
	ss := ps.spots[spot]
	if ss == nil {
		return nil, nil
	}
	blob := ss.blob(ord)
	if blob == nil {
		return nil, nil
	}
	m := t.e.newMember(t, part, ss, ord)
	if err := m.buf.decode(blob); err != nil {
		t.e.reuse(m)
		return nil, fmt.Errorf("engine: member %s#%d: %w", spot, ord, err)
	}
	t.members[r] = m
	return m, nil
}

// release drops a clean member from the transaction (bounded memory in
// backfills and queries); m must not be used afterwards.
func (t *txn) release(m *member) {
	if !m.dirty {
		delete(t.members, memberRef{m.part, m.spot, m.ord})
		t.e.reuse(m)
	}
}

// close discards an uncommitted transaction (a read) and recycles its
// members.
func (t *txn) close() {
	_ = t.b.Close()
	t.recycle()
}

// recycle hands the transaction's members back for reuse.
func (t *txn) recycle() {
	for _, m := range t.members {
		t.e.reuse(m)
	}
	clear(t.members)
}

// flip changes a member's membership in a smart group and emits the event.
func (t *txn) flip(m *member, group string, in bool) error {
	return t.flipTerm(m, group, termSmartGroup(group), in)
}

// flipTerm is flip with the group's posting term (termSmartGroup) at hand.
func (t *txn) flipTerm(m *member, group, term string, in bool) error {
	m.setGroup(group, in)
	var err error
	if in {
		err = t.postAdd(m.part, m.spot, term, m.ord)
	} else {
		err = t.postRemove(m.part, m.spot, term, m.ord)
	}
	if err != nil {
		return err
	}
	ts := t.ts
	if ts == noTS {
		ts = t.e.now
	}
	since := rule.Millis(0)
	if t.e.cfg.Limits.HistoryPerMember > 0 {
		since = ts
	}
	seq := m.nextSeq(group, since)
	op := OpRemove
	if in {
		op = OpAdd
	}
	if ts != t.tsMillis || t.tsText == "" {
		t.tsMillis, t.tsText = ts, rule.FormatMillis(ts)
	}
	if t.events == nil {
		t.events = make([]Event, 0, max(t.e.eventsHint, 16))
	}
	t.events = append(t.events, Event{Spot: m.spot, Group: group, Member: m.st.ID, Op: op,
		TS: t.tsText, Reason: t.reason, Seq: seq, Partition: m.part})
	t.countChange(op)
	return t.noteTransition(m, group, op, seq, ts)
}

// changeCount counts the membership changes of one (op, reason).
type changeCount struct {
	op     Op
	reason Reason
	n      int
}

// countChange counts a membership change for the metric, which commit
// adds to once per label pair rather than once per change.
func (t *txn) countChange(op Op) {
	for i := range t.changes {
		if c := &t.changes[i]; c.op == op && c.reason == t.reason {
			c.n++
			return
		}
	}
	t.changes = append(t.changes, changeCount{op: op, reason: t.reason, n: 1})
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
		if err := t.flushHistory(m); err != nil {
			return nil, e.fail(t, err)
		}
		m.blob = e.enc.append(make([]byte, 0, len(m.ss.blob(m.ord))+64), m.st, m.buf.seqs)
		if err := t.setOwned(state.MemberKey(r.part, r.spot, r.ord), m.blob); err != nil {
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
		if p.kind == KindDefinitions {
			e.defPos[p] = off
		}
	}
	// Under DeferPartitionWrites the event clock is not stored globally:
	// it travels with each partition's state (its clock key), which a
	// restore loads, so the clock never runs ahead of committed output.
	if t.nowDirty && !e.cfg.DeferPartitionWrites {
		if err := b.Set(state.MetaKey(metaNow), state.EncodeI64(e.now)); err != nil {
			return nil, e.fail(t, err)
		}
	}
	e.noteTimerLag(e.now)
	// The next batch likely emits as many events: its slice starts at
	// that size rather than growing (and copying) from empty.
	e.eventsHint = min(len(t.events), maxEventsHint)
	res := &Result{Events: t.events, Access: t.access, DeadLetters: t.dead}
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
	t.accessOutbox(entry)
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
	deferred := e.cfg.DeferPartitionWrites
	for _, p := range order {
		o := byPart[p]
		if deferred && p != DefPartition {
			// Not stored: the runtime publishes it, then calls Persist.
			// Ids only need to increase within this Engine's life.
			e.nextOut[p]++
			o.ID = e.nextOut[p]
			res.Outbox = append(res.Outbox, *o)
			continue
		}
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
	var err error
	switch {
	case !deferred:
		err = b.Commit()
	case b.Empty():
		err = b.Close()
	default:
		err = b.CommitNoSync()
	}
	if err != nil {
		return nil, e.fail(t, err)
	}
	if deferred {
		for _, o := range res.Outbox {
			if o.Partition != DefPartition && len(o.Changelog) > 0 {
				e.queueUnpersisted(o.Partition, o.ID, o.Changelog)
			}
		}
	}
	for _, m := range t.members {
		if m.dirty {
			m.ss.slots[m.ord].blob = m.blob
		}
	}
	for dk, d := range t.deltas {
		k := string(state.PostingKey(dk.part, dk.spot, dk.term))
		bm := e.postings[k]
		if bm == nil {
			bm = roaring.New()
			e.postings[k] = bm
		}
		bm.Or(d.adds)
		bm.AndNot(d.removes)
		if bm.IsEmpty() {
			delete(e.postings, k)
		}
	}
	t.recycle()
	e.countGroups()
	e.metrics.RuleEvaluations.Add(float64(t.evals))
	for _, c := range t.changes {
		e.metrics.MembershipChanges.WithLabelValues(string(c.op), string(c.reason)).Add(float64(c.n))
	}
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
	id := m.st.ID
	seqs, found := m.ss.erased[id]
	if !found {
		return nil
	}
	m.buf.seqs = append(m.buf.seqs[:0], seqs...)
	delete(m.ss.erased, id)
	for _, s := range seqs {
		if err := t.del(state.SeqKey(m.part, m.spot, id, s.group)); err != nil {
			return err
		}
	}
	return nil
}

// saveSeqs keeps an erased member's output seqs.
func (t *txn) saveSeqs(m *member) error {
	if len(m.buf.seqs) == 0 {
		return nil
	}
	saved := make([]groupSeq, len(m.buf.seqs))
	for i, s := range m.buf.seqs {
		saved[i] = groupSeq{group: strings.Clone(s.group), seq: s.seq}
		if err := t.set(state.SeqKey(m.part, m.spot, m.st.ID, s.group), state.EncodeU64(s.seq)); err != nil {
			return err
		}
	}
	m.ss.erased[strings.Clone(m.st.ID)] = saved
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

// set writes a key in the transaction's batch and changelog (a deferred
// key in the changelog only: see persist.go).
func (t *txn) set(key, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	t.record(key, append([]byte(nil), value...), false)
	if _, ok := t.deferred(key); ok {
		return nil
	}
	return t.b.Set(key, value)
}

// setOwned is set for a value that is never modified afterwards (the
// changelog keeps it without a copy).
func (t *txn) setOwned(key, value []byte) error {
	t.record(key, value, false)
	if _, ok := t.deferred(key); ok {
		return nil
	}
	return t.b.Set(key, value)
}

// del deletes a key.
func (t *txn) del(key []byte) error {
	t.record(key, nil, true)
	if _, ok := t.deferred(key); ok {
		return nil
	}
	return t.b.Delete(key)
}

// delKnownRange deletes [lo, hi), which holds exactly keys; the changelog
// gets one delete per key.
func (t *txn) delKnownRange(lo, hi []byte, keys [][]byte) error {
	for _, k := range keys {
		t.record(k, nil, true)
	}
	if _, ok := t.deferred(lo); ok {
		return nil
	}
	return t.b.DeleteRange(lo, hi)
}

// delRange deletes [lo, hi); the changelog gets one delete per key, found
// with a scan of the range.
func (t *txn) delRange(lo, hi []byte) error {
	if p, ok := t.deferred(lo); ok {
		keys, err := t.deferredKeys(p, lo, hi)
		if err != nil {
			return err
		}
		for _, k := range keys {
			t.record(k, nil, true)
		}
		return nil
	}
	if _, ok := logged(lo); ok && t.e.cfg.Changelog {
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
