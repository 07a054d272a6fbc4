package engine

import (
	"encoding/json"
	"fmt"

	"github.com/smartgroups/smartgroups/engine/rule"
)

// MemberState is the stored state of one member (key 'm'): the binary
// encoding of state_binary.go, or JSON in stores and changelogs written
// before it.
type MemberState struct {
	ID      string                     `json:"id"`
	Profile rule.Profile               `json:"p"`
	Custom  map[string]json.RawMessage `json:"c,omitempty"`
	Form    map[string]json.RawMessage `json:"f,omitempty"`
	// LastAct is the newest activity ts.
	LastAct *rule.Millis `json:"la,omitempty"`
	// ActN numbers activities to keep their keys unique.
	ActN uint32 `json:"an,omitempty"`
	// ActTypes has bit i set when the member has an activity of type
	// ActivityTypes[i] (0 with ActN > 0: unknown, in states written before
	// the field existed).
	ActTypes uint32 `json:"at,omitempty"`
	// Groups are the smart groups the member is in, sorted.
	Groups []string `json:"g,omitempty"`
	// Timer is the due instant of the member's pending timer.
	Timer *rule.Millis `json:"t,omitempty"`
	// Seqs are the last output seq per smart group key of the member.
	Seqs map[string]uint64 `json:"q,omitempty"`
	// Access are the last access-event seq per resource of the member
	// (odd: the member has access; SPEC §4.3).
	Access map[string]uint64 `json:"x,omitempty"`

	// accessSeqs is Access as a slice sorted by resource: what the binary
	// codec and the transaction work with.
	accessSeqs []groupSeq
	// since is when the member joined each group it is in, where known
	// (history kept); histKeys are the numbers of its history keys, in
	// order (history.go).
	since    map[string]rule.Millis
	histKeys []uint64
}

// EncodeMemberState encodes a member's stored state (binary).
func EncodeMemberState(st *MemberState) ([]byte, error) {
	var enc stateEncoder
	c := *st
	c.accessSeqs = sortedSeqs(st.Access)
	seqs := sortedSeqs(st.Seqs)
	for i := range seqs {
		if seqs[i].seq%2 == 1 {
			seqs[i].since = st.since[seqs[i].group]
		}
	}
	return enc.append(make([]byte, 0, 256), &c, seqs), nil
}

// DecodeMemberState decodes EncodeMemberState, or any JSON that
// json.Unmarshal decodes into a MemberState (the encoding of earlier
// versions), to the same state; the state does not refer to v.
func DecodeMemberState(v []byte) (*MemberState, error) {
	if len(v) > 0 && v[0] == binaryStateVersion {
		return decodeBinaryState(v)
	}
	if st, ok := decodeStateFast(v, numStateKeys); ok {
		return st, nil
	}
	st := &MemberState{}
	if err := json.Unmarshal(v, st); err != nil {
		return nil, fmt.Errorf("engine: decode member state: %w", err)
	}
	return st, nil
}

// queryState is the part of a JSON MemberState that rules evaluate and
// listings show, without the output seqs and timer bookkeeping: what
// queries decoded when they read members from the store. They now read the
// in-memory binary states; decodeQueryState stays covered by the JSON
// decoder's differential tests until the legacy decoder is trimmed.
type queryState struct {
	ID      string                     `json:"id"`
	Profile rule.Profile               `json:"p"`
	Custom  map[string]json.RawMessage `json:"c"`
	Form    map[string]json.RawMessage `json:"f"`
	LastAct *rule.Millis               `json:"la"`
	Groups  []string                   `json:"g"`
}
