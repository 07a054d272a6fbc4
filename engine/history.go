package engine

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/smartgroups/smartgroups/engine/rule"
	"github.com/smartgroups/smartgroups/state"
)

// This file keeps the membership history: every transition of a (member,
// group) with its cause, numbered per member by n (the member's
// transitions so far, every group together), the newest
// Limits.HistoryPerMember of each member. A transaction's transitions of
// a member go into one history key ('h' keys, numbered by the first
// transition they hold; the value is the entries one after the other), so
// a batch writes one key per member whatever its flips; the member's state
// lists its history keys, which lets the commit delete the keys whose
// entries have all fallen out of the bound without reading the store. When
// the member joined each smart group it is in is in its state too (the
// since of its odd seqs). Stores written before that also hold one 'h' key
// per transition and one 'j' key per joined group: they are read, trimmed
// and erased the same way. History keys are written like the member's
// state (after the commit in serve, in the synced batch in process) and
// travel in the changelog, so the new owner of a partition restores them
// and compaction drops the trimmed ones. Only the key numbers and since
// instants are held in memory, in the member's state.

// RecordRef is the position of an input record.
type RecordRef struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// Cause says what made a membership change: an input record, the clock
// (a timer), or the definition of a group (created, changed or deleted,
// or a blacklist entry of it). Exactly one is set.
type Cause struct {
	Record     *RecordRef
	Timer      bool
	Definition string
}

type causeJSON struct {
	Topic      *string `json:"topic,omitempty"`
	Partition  *int32  `json:"partition,omitempty"`
	Offset     *int64  `json:"offset,omitempty"`
	Timer      bool    `json:"timer,omitempty"`
	Definition string  `json:"definition,omitempty"`
}

// MarshalJSON writes {"topic","partition","offset"}, {"timer":true} or
// {"definition":"<group>"}.
func (c Cause) MarshalJSON() ([]byte, error) {
	switch {
	case c.Record != nil:
		return json.Marshal(c.Record)
	case c.Timer:
		return []byte(`{"timer":true}`), nil
	case c.Definition != "":
		return json.Marshal(causeJSON{Definition: c.Definition})
	}
	return []byte(`{}`), nil
}

// UnmarshalJSON reads MarshalJSON.
func (c *Cause) UnmarshalJSON(b []byte) error {
	var j causeJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("engine: cause: %w", err)
	}
	*c = Cause{Timer: j.Timer, Definition: j.Definition}
	if j.Topic != nil {
		c.Record = &RecordRef{Topic: *j.Topic}
		if j.Partition != nil {
			c.Record.Partition = *j.Partition
		}
		if j.Offset != nil {
			c.Record.Offset = *j.Offset
		}
	}
	return nil
}

// HistoryEntry is one membership transition of a member.
type HistoryEntry struct {
	Group  string `json:"group"`
	Op     Op     `json:"op"`
	TS     string `json:"ts"`
	Reason Reason `json:"reason"`
	Seq    uint64 `json:"seq"`
	Cause  Cause  `json:"cause"`
	// n numbers the member's transitions (the history key).
	n uint64
}

// HistoryPage is a page of a member's history, newest first. Next, when
// not zero, is the Before of the next page.
type HistoryPage struct {
	Items []HistoryEntry `json:"items"`
	Next  uint64         `json:"next,omitempty"`
}

// MaxHistoryPerMember bounds Limits.HistoryPerMember.
const MaxHistoryPerMember = 100_000

// recentHistory is how many transitions a MemberInfo shows.
const recentHistory = 20

// histCtx is what a transaction knows of the cause of its flips: the
// input record being applied and the group whose definition is being
// reconciled.
type histCtx struct {
	rec   *Record
	group string
}

// The binary encoding of a stored history entry: a version byte, the op,
// the reason (indexes into historyOps and Reasons()), uvarint seq, varint
// ts (Unix ms), the group (uvarint length, bytes) and the cause: a kind
// byte, then for a record the topic (length, bytes), varint partition and
// varint offset, for a definition the group (length, bytes).
const historyVersion = 1

const (
	causeNone byte = iota
	causeRecord
	causeTimer
	causeDefinition
)

var historyOps = []Op{OpAdd, OpRemove}

var reasonCodes = func() map[Reason]byte {
	m := map[Reason]byte{}
	for i, r := range Reasons() {
		m[r] = byte(i)
	}
	return m
}()

// appendHistoryValue appends the stored history entry of a flip of the
// member's key of group, with the transaction's reason and cause.
func (t *txn) appendHistoryValue(b []byte, group string, op Op, seq uint64, ts rule.Millis) []byte {
	opCode := byte(0)
	if op == OpRemove {
		opCode = 1
	}
	b = append(b, historyVersion, opCode, reasonCodes[t.reason])
	b = binary.AppendUvarint(b, seq)
	b = binary.AppendVarint(b, ts)
	b = appendHistoryString(b, group)
	switch {
	case t.reason == ReasonTime:
		b = append(b, causeTimer)
	case t.reason == ReasonDefinition || t.reason == ReasonGroupDeleted || t.reason == ReasonBlacklist:
		b = appendHistoryString(append(b, causeDefinition), t.hist.group)
	case t.hist.rec != nil:
		r := t.hist.rec
		b = appendHistoryString(append(b, causeRecord), r.Topic)
		b = binary.AppendVarint(b, int64(r.Partition))
		b = binary.AppendVarint(b, r.Offset)
	default:
		b = append(b, causeNone)
	}
	return b
}

func appendHistoryString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// decodeHistoryValue decodes the entries of a history value, in order.
func decodeHistoryValue(v []byte) ([]HistoryEntry, error) {
	var out []HistoryEntry
	for len(v) > 0 {
		h, rest, err := decodeHistoryEntry(v)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
		v = rest
	}
	if len(out) == 0 {
		return nil, errors.New("engine: empty history value")
	}
	return out, nil
}

// historyEntries counts the entries of a history value (0 when it is
// malformed).
func historyEntries(v []byte) int {
	hs, err := decodeHistoryValue(v)
	if err != nil {
		return 0
	}
	return len(hs)
}

// decodeHistoryEntry decodes one entry appended by appendHistoryValue and
// returns the bytes after it.
func decodeHistoryEntry(v []byte) (HistoryEntry, []byte, error) {
	var h HistoryEntry
	bad := errors.New("engine: malformed history entry")
	if len(v) < 3 || v[0] != historyVersion || int(v[1]) >= len(historyOps) || int(v[2]) >= len(Reasons()) {
		return h, nil, bad
	}
	h.Op, h.Reason = historyOps[v[1]], Reasons()[v[2]]
	r := v[3:]
	uv := func() uint64 {
		x, n := binary.Uvarint(r)
		if n <= 0 {
			r = nil
			return 0
		}
		r = r[n:]
		return x
	}
	sv := func() int64 {
		x, n := binary.Varint(r)
		if n <= 0 {
			r = nil
			return 0
		}
		r = r[n:]
		return x
	}
	str := func() (string, bool) {
		l := uv()
		if r == nil || uint64(len(r)) < l {
			return "", false
		}
		s := string(r[:l])
		r = r[l:]
		return s, true
	}
	h.Seq = uv()
	ts := sv()
	if r == nil {
		return h, nil, bad
	}
	h.TS = rule.FormatMillis(ts)
	g, ok := str()
	if !ok || len(r) == 0 {
		return h, nil, bad
	}
	h.Group = g
	kind := r[0]
	r = r[1:]
	switch kind {
	case causeTimer:
		h.Cause.Timer = true
	case causeDefinition:
		if h.Cause.Definition, ok = str(); !ok {
			return h, nil, bad
		}
	case causeRecord:
		topic, ok := str()
		part := sv()
		off := sv()
		if !ok || r == nil {
			return h, nil, bad
		}
		h.Cause.Record = &RecordRef{Topic: topic, Partition: int32(part), Offset: off}
	case causeNone:
	default:
		return h, nil, bad
	}
	return h, r, nil
}

// transitions is the number of a member's transitions so far: each one
// adds one to the seq of one group, and seqs are never dropped (erasure
// keeps them), so the sum numbers them.
func transitions(seqs []groupSeq) uint64 {
	var n uint64
	for _, s := range seqs {
		n += s.seq
	}
	return n
}

// noteTransition records a flip of the member's key of group, just
// emitted with seq at ts, in the member's history entries of the
// transaction (flushHistory writes them at commit); nothing when the
// history is disabled. Erasure records no entry: the member's history
// goes with it.
func (t *txn) noteTransition(m *member, group string, op Op, seq uint64, ts rule.Millis) error {
	if t.e.cfg.Limits.HistoryPerMember <= 0 || t.reason == ReasonErased {
		return nil
	}
	if len(m.hist) == 0 {
		m.histFirst = transitions(m.buf.seqs)
	}
	m.hist = t.appendHistoryValue(m.hist, group, op, seq, ts)
	return nil
}

// flushHistory writes the member's history entries of the transaction as
// one key and deletes the keys whose entries are now all older than the
// bound (key i holds the transitions up to the number of key i+1). A
// member whose state lists no keys but had transitions before may have
// keys of a store written before the state listed them: those are found
// once by a scan of the store.
func (t *txn) flushHistory(m *member) error {
	if len(m.hist) == 0 {
		return nil
	}
	keys := m.st.histKeys
	if len(keys) == 0 && m.histFirst > 1 {
		var err error
		if keys, err = t.adoptOldHistory(m); err != nil {
			return err
		}
	}
	if err := t.setOwned(state.HistoryKey(m.part, m.spot, m.ord, m.histFirst), m.hist); err != nil {
		return err
	}
	keys = append(keys, m.histFirst)
	m.hist = nil
	total := transitions(m.buf.seqs)
	if bound := uint64(t.e.cfg.Limits.HistoryPerMember); total > bound {
		// Entries up to total-bound are out: key i goes when key i+1
		// starts at or before total-bound+1.
		limit, d := total-bound+1, 0
		for d+1 < len(keys) && keys[d+1] <= limit {
			if err := t.del(state.HistoryKey(m.part, m.spot, m.ord, keys[d])); err != nil {
				return err
			}
			d++
		}
		keys = keys[d:]
	}
	m.st.histKeys = keys
	return nil
}

// adoptOldHistory finds the history keys of a member in a store written
// before member states listed them, and moves its since keys into its
// state (the since of the groups it is still in; the keys are deleted).
// It runs once per such member: afterwards the state lists its keys.
func (t *txn) adoptOldHistory(m *member) ([]uint64, error) {
	var keys []uint64
	hp := state.HistoryPrefix(m.part, m.spot, m.ord)
	err := t.e.st.Scan(hp, state.PrefixEnd(hp), func(k, _ []byte) bool {
		keys = append(keys, state.HistoryN(k))
		return true
	})
	if err != nil {
		return nil, err
	}
	sp := state.SincePrefix(m.part, m.spot, m.ord)
	old := map[string][]byte{}
	err = t.e.st.Scan(sp, state.PrefixEnd(sp), func(k, v []byte) bool {
		old[string(k)] = slices.Clone(v)
		return true
	})
	if err != nil {
		return nil, err
	}
	for _, k := range slices.Sorted(maps.Keys(old)) {
		group := k[len(sp):]
		if i, ok := slices.BinarySearchFunc(m.buf.seqs, group, func(s groupSeq, g string) int { return strings.Compare(s.group, g) }); ok {
			if s := &m.buf.seqs[i]; s.seq%2 == 1 && s.since == 0 && len(old[k]) == 8 {
				s.since = state.DecodeI64(old[k])
			}
		}
		if err := t.del([]byte(k)); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// eraseHistory deletes a member's history and since keys: those its
// state lists and those the store holds (written by a store that did not
// list them, or before a bound was lowered); the entries of this
// transaction are dropped.
func (t *txn) eraseHistory(m *member) error {
	keys := map[string]bool{}
	for _, prefix := range [][]byte{state.HistoryPrefix(m.part, m.spot, m.ord), state.SincePrefix(m.part, m.spot, m.ord)} {
		err := t.e.st.Scan(prefix, state.PrefixEnd(prefix), func(k, _ []byte) bool { keys[string(k)] = true; return true })
		if err != nil {
			return err
		}
	}
	for _, n := range m.st.histKeys {
		keys[string(state.HistoryKey(m.part, m.spot, m.ord, n))] = true
	}
	m.hist, m.st.histKeys = nil, nil
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if err := t.del([]byte(k)); err != nil {
			return err
		}
	}
	return nil
}

// committedRange returns the keys and values in [lo, hi) of partition p
// as committed: the store, then the batches applied but not yet persisted
// (DeferPartitionWrites), in order. Called under e.mu.
func (e *Engine) committedRange(p int32, lo, hi []byte) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := e.st.Scan(lo, hi, func(k, v []byte) bool { out[string(k)] = slices.Clone(v); return true })
	if err != nil {
		return nil, err
	}
	for _, u := range e.unpersisted[p] {
		for _, en := range u.entries {
			if bytes.Compare(en.Key, lo) < 0 || bytes.Compare(en.Key, hi) >= 0 {
				continue
			}
			if en.Delete {
				delete(out, string(en.Key))
			} else {
				out[string(en.Key)] = en.Value
			}
		}
	}
	return out, nil
}

// decodeHistory decodes a member's history keys and values, newest first.
func decodeHistory(kv map[string][]byte) ([]HistoryEntry, error) {
	out := make([]HistoryEntry, 0, len(kv))
	for k, v := range kv {
		hs, err := decodeHistoryValue(v)
		if err != nil {
			return nil, fmt.Errorf("engine: history key %q: %w", k, err)
		}
		first := state.HistoryN([]byte(k))
		for i := range hs {
			hs[i].n = first + uint64(i)
		}
		out = append(out, hs...)
	}
	slices.SortFunc(out, func(a, b HistoryEntry) int {
		switch {
		case a.n > b.n:
			return -1
		case a.n < b.n:
			return 1
		}
		return 0
	})
	return out, nil
}

// pageHistory filters a member's history (newest first) to group (all
// when empty) and the entries before `before` (all when 0), at most
// limit of them.
func pageHistory(all []HistoryEntry, group string, before uint64, limit int) *HistoryPage {
	page := &HistoryPage{Items: []HistoryEntry{}}
	for _, h := range all {
		if (before != 0 && h.n >= before) || (group != "" && h.Group != group) {
			continue
		}
		if len(page.Items) == limit {
			page.Next = page.Items[len(page.Items)-1].n
			break
		}
		page.Items = append(page.Items, h)
	}
	return page
}

// memberHistory reads a loaded member's history, newest first, at most the
// bound's newest transitions. Called under e.mu.
func (e *Engine) memberHistory(p int32, spot string, ord uint32, seqs []groupSeq) ([]HistoryEntry, error) {
	hp := state.HistoryPrefix(p, spot, ord)
	kv, err := e.committedRange(p, hp, state.PrefixEnd(hp))
	if err != nil {
		return nil, err
	}
	all, err := decodeHistory(kv)
	if err != nil {
		return nil, err
	}
	// A bound lowered since the entries were written: show the newest
	// bound ones only.
	if bound := uint64(e.cfg.Limits.HistoryPerMember); bound > 0 {
		total := transitions(seqs)
		all = slices.DeleteFunc(all, func(h HistoryEntry) bool { return total >= bound && h.n <= total-bound })
	}
	return all, nil
}

// memberSince reads when a loaded member joined each smart group it is in
// (those joined before the history existed have none): from its state,
// or the since keys of a store written before the state held them.
// Called under e.mu.
func (e *Engine) memberSince(p int32, spot string, ord uint32, st *MemberState) (map[string]rule.Millis, error) {
	sp := state.SincePrefix(p, spot, ord)
	kv, err := e.committedRange(p, sp, state.PrefixEnd(sp))
	if err != nil {
		return nil, err
	}
	return mergeSince(decodeSince(len(sp), kv), st), nil
}

// mergeSince adds the since instants of a state to those of since keys.
func mergeSince(keys map[string]rule.Millis, st *MemberState) map[string]rule.Millis {
	maps.Copy(keys, st.since)
	return keys
}

func decodeSince(prefixLen int, kv map[string][]byte) map[string]rule.Millis {
	out := make(map[string]rule.Millis, len(kv))
	for k, v := range kv {
		if len(v) == 8 && len(k) > prefixLen {
			out[k[prefixLen:]] = state.DecodeI64(v)
		}
	}
	return out
}

// loaded finds a member of an owned partition in memory: its partition,
// spot state, ordinal and committed state blob. Called under e.mu.
func (e *Engine) loaded(spot, id string) (int32, *spotState, uint32, []byte, error) {
	p := e.cfg.PartitionOf(spot, id)
	if err := e.readable(p); err != nil {
		return 0, nil, 0, nil, err
	}
	ps := e.parts[p]
	var ss *spotState
	if ps != nil {
		ss = ps.spots[spot]
	}
	if ss == nil {
		return 0, nil, 0, nil, fmt.Errorf("%w: %q", ErrUnknownMember, id)
	}
	ord, ok := ss.ids.get(id)
	if !ok || ss.blob(ord) == nil {
		return 0, nil, 0, nil, fmt.Errorf("%w: %q", ErrUnknownMember, id)
	}
	return p, ss, ord, ss.blob(ord), nil
}

// MemberHistory returns a page of a member's membership transitions,
// newest first: of one group when group is not empty, before the
// transition numbered before (HistoryPage.Next; 0: from the newest), at
// most limit. The member's partition must be owned.
func (e *Engine) MemberHistory(spot, member, group string, before uint64, limit int) (*HistoryPage, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, _, ord, blob, err := e.loaded(spot, member)
	if err != nil {
		return nil, err
	}
	st, err := DecodeMemberState(blob)
	if err != nil {
		return nil, err
	}
	all, err := e.memberHistory(p, spot, ord, sortedSeqs(st.Seqs))
	if err != nil {
		return nil, err
	}
	return pageHistory(all, group, before, limit), nil
}

// MemberInfo returns everything the engine holds about a member (see
// MemberInfo). The member's partition must be owned.
func (e *Engine) MemberInfo(spot, member string) (*MemberInfo, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, ss, ord, blob, err := e.loaded(spot, member)
	if err != nil {
		return nil, err
	}
	st, err := DecodeMemberState(blob)
	if err != nil {
		return nil, err
	}
	acts := ss.slots[ord].acts
	list := make([]actTS, len(acts))
	for i, a := range acts {
		list[i] = actTS{typ: actTypeNames[a.typ], ts: a.ts}
	}
	since, err := e.memberSince(p, spot, ord, st)
	if err != nil {
		return nil, err
	}
	hist, err := e.memberHistory(p, spot, ord, sortedSeqs(st.Seqs))
	if err != nil {
		return nil, err
	}
	return newMemberInfo(spot, p, st, list, since, hist)
}

// sinceOf returns when a loaded member joined a smart group (ok false
// when it is not in it or joined before the history existed). Called
// under e.mu.
func (e *Engine) sinceOf(spot, member, group string) (string, bool) {
	p, _, ord, blob, err := e.loaded(spot, member)
	if err != nil {
		return "", false
	}
	st, err := DecodeMemberState(blob)
	if err != nil {
		return "", false
	}
	if ms, ok := st.since[group]; ok {
		return rule.FormatMillis(ms), true
	}
	k := state.SinceKey(p, spot, ord, group)
	kv, err := e.committedRange(p, k, append(slices.Clone(k), 0))
	if err != nil || len(kv[string(k)]) != 8 {
		return "", false
	}
	return rule.FormatMillis(state.DecodeI64(kv[string(k)])), true
}
