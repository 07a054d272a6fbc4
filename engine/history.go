package engine

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/smartgroups/smartgroups/engine/rule"
	"github.com/smartgroups/smartgroups/state"
)

// This file keeps the membership history: every transition of a (member,
// group) with its cause, in the store only ('h' keys, numbered per member
// by n, the member's transitions so far, every group together), the newest
// Limits.HistoryPerMember of each member; and when the member joined each
// smart group it is in ('j' keys). Both are written like the member's
// state (after the commit in serve, in the synced batch in process) and
// travel in the changelog as keys of their own, so the new owner of a
// partition restores them and compaction drops the trimmed ones. Nothing
// of it is held in memory.

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

// decodeHistoryValue decodes appendHistoryValue.
func decodeHistoryValue(v []byte) (HistoryEntry, error) {
	var h HistoryEntry
	bad := errors.New("engine: malformed history entry")
	if len(v) < 3 || v[0] != historyVersion || int(v[1]) >= len(historyOps) || int(v[2]) >= len(Reasons()) {
		return h, bad
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
		return h, bad
	}
	h.TS = rule.FormatMillis(ts)
	g, ok := str()
	if !ok || len(r) == 0 {
		return h, bad
	}
	h.Group = g
	kind := r[0]
	r = r[1:]
	switch kind {
	case causeTimer:
		h.Cause.Timer = true
	case causeDefinition:
		if h.Cause.Definition, ok = str(); !ok {
			return h, bad
		}
	case causeRecord:
		topic, ok := str()
		part := sv()
		off := sv()
		if !ok || r == nil {
			return h, bad
		}
		h.Cause.Record = &RecordRef{Topic: topic, Partition: int32(part), Offset: off}
	case causeNone:
	default:
		return h, bad
	}
	return h, nil
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
// emitted with seq at ts: the since key, and the history entry (trimming
// the member's history to the bound); nothing when the history is
// disabled. Erasure records no entry: the member's history goes with it.
func (t *txn) noteTransition(m *member, group string, op Op, seq uint64, ts rule.Millis) error {
	bound := uint64(max(t.e.cfg.Limits.HistoryPerMember, 0))
	if bound == 0 {
		return nil
	}
	sk := state.SinceKey(m.part, m.spot, m.ord, group)
	var err error
	if op == OpAdd {
		err = t.setOwned(sk, state.EncodeI64(ts))
	} else {
		err = t.del(sk)
	}
	if err != nil || t.reason == ReasonErased {
		return err
	}
	n := transitions(m.buf.seqs)
	v := t.appendHistoryValue(make([]byte, 0, 32+len(group)), group, op, seq, ts)
	if err := t.setOwned(state.HistoryKey(m.part, m.spot, m.ord, n), v); err != nil {
		return err
	}
	if n > bound {
		return t.del(state.HistoryKey(m.part, m.spot, m.ord, n-bound))
	}
	return nil
}

// eraseHistory deletes a member's history: the keys the store holds
// (written by earlier batches, perhaps with a larger bound) and the
// newest bound numbers, which cover the batches not yet persisted and
// this one.
func (t *txn) eraseHistory(m *member) error {
	keys := map[string]bool{}
	// Since keys left by a run that kept history, when this one keeps
	// none (otherwise the erasure's flips deleted them).
	for _, prefix := range [][]byte{state.HistoryPrefix(m.part, m.spot, m.ord), state.SincePrefix(m.part, m.spot, m.ord)} {
		err := t.e.st.Scan(prefix, state.PrefixEnd(prefix), func(k, _ []byte) bool { keys[string(k)] = true; return true })
		if err != nil {
			return err
		}
	}
	n := transitions(m.buf.seqs)
	for i := uint64(0); i < uint64(max(t.e.cfg.Limits.HistoryPerMember, 0)) && i < n; i++ {
		keys[string(state.HistoryKey(m.part, m.spot, m.ord, n-i))] = true
	}
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
		h, err := decodeHistoryValue(v)
		if err != nil {
			return nil, fmt.Errorf("engine: history entry %q: %w", k, err)
		}
		h.n = state.HistoryN([]byte(k))
		out = append(out, h)
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
// (those joined before the history existed have none). Called under e.mu.
func (e *Engine) memberSince(p int32, spot string, ord uint32) (map[string]rule.Millis, error) {
	sp := state.SincePrefix(p, spot, ord)
	kv, err := e.committedRange(p, sp, state.PrefixEnd(sp))
	if err != nil {
		return nil, err
	}
	return decodeSince(len(sp), kv), nil
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
	since, err := e.memberSince(p, spot, ord)
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
	p, _, ord, _, err := e.loaded(spot, member)
	if err != nil {
		return "", false
	}
	k := state.SinceKey(p, spot, ord, group)
	kv, err := e.committedRange(p, k, append(slices.Clone(k), 0))
	if err != nil || len(kv[string(k)]) != 8 {
		return "", false
	}
	return rule.FormatMillis(state.DecodeI64(kv[string(k)])), true
}
