package state

import (
	"encoding/binary"
	"fmt"
)

// Sub-key bytes of partition-scoped keys that callers need to recognize
// (the engine loads a partition's state with one scan of its keys).
const (
	SubPosting    byte = subPosting
	SubOutbox     byte = subOutbox
	SubMemberID   byte = subMemberID
	SubOrdCounter byte = subOrdCounter
	SubMember     byte = subMember
	SubActivity   byte = subActivity
	SubActivityID byte = subActivityID
	SubSeq        byte = subSeq
	SubApplied    byte = subApplied
	SubBlacklist  byte = subBlacklist
	SubAppliedRes byte = subAppliedRes
	SubSnapshot   byte = subSnapshot
)

// PartitionOfKey returns the partition and sub-key byte of a
// partition-scoped key.
func PartitionOfKey(key []byte) (part int32, sub byte, ok bool) {
	if len(key) < 6 || key[0] != prefixPartition {
		return 0, 0, false
	}
	return int32(binary.BigEndian.Uint32(key[1:5])), key[5], true
}

// Key prefixes; see the package documentation for the layout.
const (
	prefixDef       = 'd'
	prefixMeta      = 'x'
	prefixPartition = 'p'

	subMemberID   = 'k'
	subOrdCounter = 'n'
	subMember     = 'm'
	subActivity   = 'a'
	subActivityID = 'i'
	subPosting    = 'l'
	subSeq        = 's'
	subTimer      = 't'
	subPosition   = 'o'
	subOutbox     = 'e'
	subClock      = 'c'
	subApplied    = 'G'
	subBlacklist  = 'B'
	subAppliedRes = 'R'
	subSnapshot   = 'T'
)

func appendU32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
func appendU64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

// appendI64 encodes a signed instant so that byte order is numeric order.
func appendI64(b []byte, v int64) []byte { return appendU64(b, uint64(v)^(1<<63)) }

func decodeI64(b []byte) int64 { return int64(binary.BigEndian.Uint64(b) ^ (1 << 63)) }

// DefKey is the key of a definition. member is empty except for blacklist
// entries.
func DefKey(kind, spot, id, member string) []byte {
	b := make([]byte, 0, 4+len(kind)+len(spot)+len(id)+len(member))
	b = append(b, prefixDef)
	b = append(b, kind...)
	b = append(b, 0)
	b = append(b, spot...)
	b = append(b, 0)
	b = append(b, id...)
	if member != "" {
		b = append(b, 0)
		b = append(b, member...)
	}
	return b
}

// DefPrefix is the prefix of all definition keys.
func DefPrefix() []byte { return []byte{prefixDef} }

// MetaKey is the key of a named engine metadata value.
func MetaKey(name string) []byte { return append([]byte{prefixMeta}, name...) }

// PartitionPrefix is the prefix of all keys of one input partition.
func PartitionPrefix(part int32) []byte {
	return appendU32([]byte{prefixPartition}, uint32(part))
}

func partKey(part int32, sub byte, extra int) []byte {
	b := make([]byte, 0, 6+extra)
	b = append(b, prefixPartition)
	b = appendU32(b, uint32(part))
	return append(b, sub)
}

func spotKey(part int32, sub byte, spot string, extra int) []byte {
	b := partKey(part, sub, len(spot)+1+extra)
	b = append(b, spot...)
	return append(b, 0)
}

// MemberIDKey maps a member id to its ordinal.
func MemberIDKey(part int32, spot, member string) []byte {
	return append(spotKey(part, subMemberID, spot, len(member)), member...)
}

// OrdCounterKey holds the next ordinal of a spot.
func OrdCounterKey(part int32, spot string) []byte {
	return append(partKey(part, subOrdCounter, len(spot)), spot...)
}

// MemberKey is the key of a member's state.
func MemberKey(part int32, spot string, ord uint32) []byte {
	return appendU32(spotKey(part, subMember, spot, 4), ord)
}

// MemberSpotPrefix is the prefix of all member states of a spot.
func MemberSpotPrefix(part int32, spot string) []byte { return spotKey(part, subMember, spot, 0) }

// ActivityKey is the key of one activity of a member.
func ActivityKey(part int32, spot string, ord uint32, typ string, ts int64, n uint32) []byte {
	b := appendU32(spotKey(part, subActivity, spot, 4+len(typ)+13), ord)
	b = append(b, typ...)
	b = append(b, 0)
	b = appendI64(b, ts)
	return appendU32(b, n)
}

// ActivityPrefix is the prefix of a member's activities, of one type when
// typ is not empty.
func ActivityPrefix(part int32, spot string, ord uint32, typ string) []byte {
	b := appendU32(spotKey(part, subActivity, spot, 4+len(typ)+1), ord)
	if typ != "" {
		b = append(b, typ...)
		b = append(b, 0)
	}
	return b
}

// ActivityTS decodes the ts of an activity key with a type prefix of length
// len(prefix).
func ActivityTS(key []byte, prefixLen int) int64 { return decodeI64(key[prefixLen : prefixLen+8]) }

// ActivityIDKey records that an activity id was seen for a member.
func ActivityIDKey(part int32, spot string, ord uint32, id string) []byte {
	return append(appendU32(spotKey(part, subActivityID, spot, 4+len(id)), ord), id...)
}

// ActivityIDPrefix is the prefix of a member's seen activity ids.
func ActivityIDPrefix(part int32, spot string, ord uint32) []byte {
	return appendU32(spotKey(part, subActivityID, spot, 4), ord)
}

// PostingKey is the key of a posting list.
func PostingKey(part int32, spot, term string) []byte {
	return append(spotKey(part, subPosting, spot, len(term)), term...)
}

// SeqKey is the key of the last output seq of <spot>/<group>/<member> of
// an erased member (live members keep their seqs in their state).
func SeqKey(part int32, spot, member, group string) []byte {
	b := append(spotKey(part, subSeq, spot, len(member)+1+len(group)), member...)
	b = append(b, 0)
	return append(b, group...)
}

// SeqMemberPrefix is the prefix of the seq keys of one erased member.
func SeqMemberPrefix(part int32, spot, member string) []byte {
	return append(append(spotKey(part, subSeq, spot, len(member)+1), member...), 0)
}

// TimerKey is the key of a member's timer in stores of earlier versions,
// which kept one besides the member's state (which holds the timer now);
// erasure deletes it.
func TimerKey(part int32, due int64, spot string, ord uint32) []byte {
	b := appendI64(partKey(part, subTimer, 8+len(spot)+5), due)
	b = append(b, spot...)
	b = append(b, 0)
	return appendU32(b, ord)
}

// PositionKey is the key of the next input offset of a topic partition.
func PositionKey(part int32, topic string) []byte {
	return append(partKey(part, subPosition, len(topic)), topic...)
}

// PartitionClockKey holds the event clock a partition's state reflects.
func PartitionClockKey(part int32) []byte { return partKey(part, subClock, 0) }

// SnapshotKey holds the snapshot tag of a partition's state: which
// changelog offset the stored state reflects and when (EncodeSnapshotTag).
// It is written with the state it describes, never to the changelog.
func SnapshotKey(part int32) []byte { return partKey(part, subSnapshot, 0) }

// EncodeSnapshotTag encodes a snapshot tag: the changelog offset and the
// Unix milliseconds of that record.
func EncodeSnapshotTag(offset, unixMillis int64) []byte {
	return appendI64(appendI64(make([]byte, 0, 16), offset), unixMillis)
}

// DecodeSnapshotTag decodes EncodeSnapshotTag; ok is false for a malformed
// value.
func DecodeSnapshotTag(v []byte) (offset, unixMillis int64, ok bool) {
	if len(v) != 16 {
		return 0, 0, false
	}
	return decodeI64(v[:8]), decodeI64(v[8:]), true
}

// OutboxKey is the key of an outbox entry.
func OutboxKey(part int32, id uint64) []byte { return appendU64(partKey(part, subOutbox, 8), id) }

// OutboxPrefix is the prefix of a partition's outbox.
func OutboxPrefix(part int32) []byte { return partKey(part, subOutbox, 0) }

// OutboxID decodes the id of an outbox key.
func OutboxID(key []byte) uint64 { return binary.BigEndian.Uint64(key[len(key)-8:]) }

// OutboxNextKey holds the next outbox id of a partition. It is a global key:
// ids keep increasing when the partition's state is dropped and restored.
func OutboxNextKey(part int32) []byte { return MetaKey(fmt.Sprintf("outbox-next/%d", part)) }

// AppliedGroupKey records which definition of a group a partition reflects.
func AppliedGroupKey(part int32, spot, group string) []byte {
	return append(spotKey(part, subApplied, spot, len(group)), group...)
}

// AppliedGroupPrefix is the prefix of the applied groups of a spot.
func AppliedGroupPrefix(part int32, spot string) []byte { return spotKey(part, subApplied, spot, 0) }

// AppliedSpotsPrefix is the prefix of all applied groups of a partition.
func AppliedSpotsPrefix(part int32) []byte { return partKey(part, subApplied, 0) }

// AppliedResourcesKey records which resource list of a group the access
// of a partition's members reflects.
func AppliedResourcesKey(part int32, spot, group string) []byte {
	return append(spotKey(part, subAppliedRes, spot, len(group)), group...)
}

// BlacklistKey records a blacklist entry reflected in a partition.
func BlacklistKey(part int32, spot, group, member string) []byte {
	b := append(spotKey(part, subBlacklist, spot, len(group)+1+len(member)), group...)
	b = append(b, 0)
	return append(b, member...)
}

// BlacklistPrefix is the prefix of a partition's applied blacklist entries.
func BlacklistPrefix(part int32) []byte { return partKey(part, subBlacklist, 0) }

// PrefixEnd returns the smallest key greater than every key with prefix p.
func PrefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// EncodeU32 and friends encode fixed-width values.
func EncodeU32(v uint32) []byte { return appendU32(nil, v) }

// DecodeU32 decodes EncodeU32.
func DecodeU32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }

// EncodeU64 encodes a uint64.
func EncodeU64(v uint64) []byte { return appendU64(nil, v) }

// DecodeU64 decodes EncodeU64.
func DecodeU64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

// EncodeI64 encodes an int64 in sortable form.
func EncodeI64(v int64) []byte { return appendI64(nil, v) }

// DecodeI64 decodes EncodeI64.
func DecodeI64(b []byte) int64 { return decodeI64(b) }
