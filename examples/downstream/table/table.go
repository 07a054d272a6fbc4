package table

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Event is a membership event as it appears on the memberships topic, or
// an access event of the access topic (Resource and Groups set, Group
// empty). A downstream service only needs the wire format, not the engine.
type Event struct {
	Spot   string `json:"spot"`
	Group  string `json:"group,omitempty"`
	Member string `json:"member"`
	Op     string `json:"op"` // "add" or "remove"; "grant" or "revoke"
	TS     string `json:"ts"`
	Reason string `json:"reason,omitempty"`
	Seq    uint64 `json:"seq"`
	// Resource and Groups are those of an access event.
	Resource string   `json:"resource,omitempty"`
	Groups   []string `json:"groups,omitempty"`
}

// Key is the record key of the event, "<spot>/<group>/<member>" (an
// access event: "<spot>/<resource>/<member>").
func (e Event) Key() string {
	if e.Group == "" && e.Resource != "" {
		return e.Spot + "/" + e.Resource + "/" + e.Member
	}
	return e.Spot + "/" + e.Group + "/" + e.Member
}

// Message is one committed record of the memberships topic.
type Message struct {
	Topic     string
	Partition int
	Offset    int64
	Key       []byte
	Value     []byte
	Time      time.Time
}

// ViolationKind classifies a breach of the stream's guarantees.
type ViolationKind string

// Violation kinds.
const (
	// Duplicate: seq not above the last seq of the key (delivered twice).
	Duplicate ViolationKind = "duplicate"
	// Gap: seq skipped ahead (an event was lost).
	Gap ViolationKind = "gap"
	// OpOrder: the op repeats the previous one, or seq 1 is not an add.
	OpOrder ViolationKind = "op_order"
	// BadKey: the record key is not the event's key.
	BadKey ViolationKind = "bad_key"
	// Undecodable: the value is not a membership event.
	Undecodable ViolationKind = "undecodable"
)

// Violation is one breach, with where it was read.
type Violation struct {
	Kind      ViolationKind
	Key       string
	Partition int
	Offset    int64
	Seq       uint64 // the event's seq
	LastSeq   uint64 // the key's seq before it
	Detail    string
}

func (v Violation) String() string {
	return fmt.Sprintf("%s: key %q at partition %d offset %d: %s", v.Kind, v.Key, v.Partition, v.Offset, v.Detail)
}

// Change is an event the table applied.
type Change struct {
	Event     Event
	Partition int
	Offset    int64
}

type keyState struct {
	seq    uint64
	op     string
	member bool
}

// Table is the membership table (New), or the access table (NewAccess):
// per key, whether its last event is an add (a grant). It is safe for
// concurrent use.
type Table struct {
	// Strict requires every key's first event to have seq 1; leave it off
	// for compacted topics.
	Strict bool
	// opIn and opOut are the ops that enter and leave: add and remove, or
	// grant and revoke.
	opIn, opOut string

	mu         sync.RWMutex
	keys       map[string]*keyState
	members    int
	applied    int
	violations []Violation
}

// New returns an empty membership table.
func New() *Table { return &Table{keys: make(map[string]*keyState), opIn: "add", opOut: "remove"} }

// NewAccess returns an empty access table: key "<spot>/<resource>/<member>",
// a member has access while the last event of the key is a grant.
func NewAccess() *Table {
	return &Table{keys: make(map[string]*keyState), opIn: "grant", opOut: "revoke"}
}

// Apply decodes a message and applies it. It returns the change when the
// event was applied (its seq is above the key's last) and the violations it
// revealed. Duplicates are reported and not applied; a gap is reported and
// applied (the latest event wins).
func (t *Table) Apply(m Message) (*Change, []Violation) {
	var e Event
	if err := json.Unmarshal(m.Value, &e); err != nil || e.Spot == "" || (e.Group == "") == (e.Resource == "") || e.Member == "" || e.Seq == 0 {
		detail := "not a membership or access event"
		if err != nil {
			detail = err.Error()
		}
		v := Violation{Kind: Undecodable, Key: string(m.Key), Partition: m.Partition, Offset: m.Offset, Detail: detail}
		t.record(v)
		return nil, []Violation{v}
	}
	return t.ApplyEvent(string(m.Key), e, m.Partition, m.Offset)
}

// ApplyEvent applies a decoded event read under key at partition/offset.
func (t *Table) ApplyEvent(key string, e Event, partition int, offset int64) (*Change, []Violation) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var vs []Violation
	bad := func(kind ViolationKind, last uint64, format string, args ...any) {
		v := Violation{Kind: kind, Key: e.Key(), Partition: partition, Offset: offset, Seq: e.Seq, LastSeq: last,
			Detail: fmt.Sprintf(format, args...)}
		vs = append(vs, v)
		t.violations = append(t.violations, v)
	}
	if key != e.Key() {
		bad(BadKey, 0, "record key %q, event key %q", key, e.Key())
	}
	if e.Op != t.opIn && e.Op != t.opOut {
		bad(OpOrder, 0, "unknown op %q", e.Op)
		return nil, vs
	}

	ks := t.keys[e.Key()]
	switch {
	case ks == nil:
		if e.Seq != 1 && t.Strict {
			bad(Gap, 0, "first event has seq %d, want 1", e.Seq)
		}
		if e.Seq == 1 && e.Op != t.opIn {
			bad(OpOrder, 0, "seq 1 is a %s, want %s", e.Op, t.opIn)
		}
		ks = &keyState{}
		t.keys[e.Key()] = ks
	case e.Seq <= ks.seq:
		bad(Duplicate, ks.seq, "seq %d after seq %d", e.Seq, ks.seq)
		return nil, vs
	case e.Seq > ks.seq+1:
		bad(Gap, ks.seq, "seq %d after seq %d", e.Seq, ks.seq)
	case e.Op == ks.op:
		bad(OpOrder, ks.seq, "%s after %s", e.Op, ks.op)
	}

	member := e.Op == t.opIn
	if member && !ks.member {
		t.members++
	} else if !member && ks.member {
		t.members--
	}
	ks.seq, ks.op, ks.member = e.Seq, e.Op, member
	t.applied++
	return &Change{Event: e, Partition: partition, Offset: offset}, vs
}

func (t *Table) record(v Violation) {
	t.mu.Lock()
	t.violations = append(t.violations, v)
	t.mu.Unlock()
}

// IsMember reports whether member is in the group.
func (t *Table) IsMember(spot, group, member string) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	ks := t.keys[spot+"/"+group+"/"+member]
	return ks != nil && ks.member
}

// Members returns the sorted members of a group.
func (t *Table) Members(spot, group string) []string {
	prefix := spot + "/" + group + "/"
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []string
	for k, ks := range t.keys {
		if ks.member && strings.HasPrefix(k, prefix) {
			out = append(out, k[len(prefix):])
		}
	}
	sort.Strings(out)
	return out
}

// Snapshot returns key -> member for every key seen (false after a remove).
func (t *Table) Snapshot() map[string]bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make(map[string]bool, len(t.keys))
	for k, ks := range t.keys {
		out[k] = ks.member
	}
	return out
}

// Seq returns the last applied seq of a key (0 if unseen).
func (t *Table) Seq(key string) uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if ks := t.keys[key]; ks != nil {
		return ks.seq
	}
	return 0
}

// Stats returns the number of memberships (keys whose last op is add or
// grant), of
// keys, and of applied events.
func (t *Table) Stats() (members, keys, applied int) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.members, len(t.keys), t.applied
}

// Violations returns every violation seen so far.
func (t *Table) Violations() []Violation {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return append([]Violation(nil), t.violations...)
}
