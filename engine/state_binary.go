package engine

// The binary member-state encoding: what the store ('m' keys), the
// changelog and the in-memory partition state hold for each member. It is
// compact, needs no escaping and decodes without copying: the strings of a
// state decoded from an in-memory blob are views of the blob
// (unsafe.String), which is safe because a blob is never modified once
// built; a changed member is re-encoded into a new blob at commit.
//
// Layout (uvarint lengths and counts; str = uvarint length + bytes):
//
//	0x01                      version (a JSON state starts with '{')
//	uvarint flags             bit k < 7: profile string k is set;
//	                          bits 7..11: invited_at, registered_at,
//	                          last_activity_at, LastAct, Timer are set;
//	                          bit 12: the groups are not listed, they are
//	                          those whose seq is odd
//	str id
//	str ...                   the profile strings that are set, in order
//	varint ...                the instants that are set, in order
//	uvarint ActN, ActTypes
//	list tags, list static_groups          (count, str...)
//	map utm, map custom, map form          (count, (str key, str value)...),
//	                                        keys sorted
//	list groups                            sorted; absent with bit 12
//	seqs                                   (count, (str group, uvarint seq)...),
//	                                        groups strictly increasing
//	                                        with bit 14, an odd seq is followed by
//	                                        varint since (Unix ms the member joined;
//	                                        0: unknown)
//	access                                 with bit 13 only: the access seqs
//	                                        (count, (str resource, uvarint seq)...),
//	                                        resources strictly increasing
//	history keys                           with bit 15 only: the transition numbers
//	                                        of the member's history keys (count,
//	                                        uvarint first, uvarint increments)

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"maps"
	"math"
	"slices"
	"unsafe"

	"github.com/smartgroups/smartgroups/engine/rule"
)

// binaryStateVersion is the first byte of a binary member state.
const binaryStateVersion = 0x01

// The flag bits of the instants, after the profile strings.
const (
	flagInvitedAt = 1 << (numProfileStrings + iota)
	flagRegisteredAt
	flagLastActivityAt
	flagLastAct
	flagTimer
	// flagGroupsBySeq: every flip of a group increments its seq and a
	// member starts outside, so normally the groups are exactly those with
	// an odd seq; the list is then left out (the encoder checks).
	flagGroupsBySeq
	// flagAccess: the access seqs follow the group seqs.
	flagAccess
	// flagSince: each odd group seq is followed by when the member
	// joined the group.
	flagSince
	// flagHistory: the numbers of the member's history keys follow the
	// access seqs.
	flagHistory
	flagsKnown = flagHistory<<1 - 1
)

const numStateInstants = 5

// timerInstant is the index of Timer among the instants.
const timerInstant = 4

var errBinaryState = errors.New("engine: malformed binary member state")

// groupSeq is the last output seq of one of a member's smart-group keys
// and, when the seq is odd (the member is in the group) and the history is
// kept, when the member joined (0: unknown).
type groupSeq struct {
	group string
	seq   uint64
	since rule.Millis
}

// stateEncoder encodes member states; it keeps scratch space across calls.
type stateEncoder struct {
	keys []string
}

// instants returns the addresses of a state's optional instants, in flag
// order.
func instants(st *MemberState) [numStateInstants]**rule.Millis {
	p := &st.Profile
	return [numStateInstants]**rule.Millis{&p.InvitedAt, &p.RegisteredAt, &p.LastActivityAt, &st.LastAct, &st.Timer}
}

// append encodes st, with the output seqs given as a sorted slice (st.Seqs
// is ignored), after b.
func (enc *stateEncoder) append(b []byte, st *MemberState, seqs []groupSeq) []byte {
	p := &st.Profile
	var flags uint64
	for k := range numProfileStrings {
		if *profileStr(p, k) != nil {
			flags |= 1 << k
		}
	}
	ins := instants(st)
	for i, v := range ins {
		if *v != nil {
			flags |= flagInvitedAt << i
		}
	}
	bySeq := groupsBySeq(st.Groups, seqs)
	if bySeq {
		flags |= flagGroupsBySeq
	}
	if len(st.accessSeqs) > 0 {
		flags |= flagAccess
	}
	for _, s := range seqs {
		if s.seq%2 == 1 && s.since != 0 {
			flags |= flagSince
			break
		}
	}
	if len(st.histKeys) > 0 {
		flags |= flagHistory
	}
	b = append(b, binaryStateVersion)
	b = binary.AppendUvarint(b, flags)
	b = appendStr(b, st.ID)
	for k := range numProfileStrings {
		if s := *profileStr(p, k); s != nil {
			b = appendStr(b, *s)
		}
	}
	for _, v := range ins {
		if *v != nil {
			b = binary.AppendVarint(b, **v)
		}
	}
	b = binary.AppendUvarint(b, uint64(st.ActN))
	b = binary.AppendUvarint(b, uint64(st.ActTypes))
	b = appendStrList(b, p.Tags)
	b = appendStrList(b, p.StaticGroups)
	b = appendSortedMap(b, enc, p.UTM, appendStr)
	b = appendSortedMap(b, enc, st.Custom, func(b []byte, v json.RawMessage) []byte { return appendBytes(b, v) })
	b = appendSortedMap(b, enc, st.Form, func(b []byte, v json.RawMessage) []byte { return appendBytes(b, v) })
	if !bySeq {
		b = appendStrList(b, st.Groups)
	}
	b = binary.AppendUvarint(b, uint64(len(seqs)))
	for _, s := range seqs {
		b = appendStr(b, s.group)
		b = binary.AppendUvarint(b, s.seq)
		if flags&flagSince != 0 && s.seq%2 == 1 {
			b = binary.AppendVarint(b, s.since)
		}
	}
	if len(st.accessSeqs) > 0 {
		b = binary.AppendUvarint(b, uint64(len(st.accessSeqs)))
		for _, s := range st.accessSeqs {
			b = appendStr(b, s.group)
			b = binary.AppendUvarint(b, s.seq)
		}
	}
	if len(st.histKeys) > 0 {
		b = binary.AppendUvarint(b, uint64(len(st.histKeys)))
		prev := uint64(0)
		for _, n := range st.histKeys {
			b = binary.AppendUvarint(b, n-prev)
			prev = n
		}
	}
	return b
}

// groupsBySeq reports whether groups (sorted) are exactly the groups of
// seqs whose seq is odd.
func groupsBySeq(groups []string, seqs []groupSeq) bool {
	i := 0
	for _, s := range seqs {
		if s.seq%2 == 0 {
			continue
		}
		if i == len(groups) || groups[i] != s.group {
			return false
		}
		i++
	}
	return i == len(groups)
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendStrList(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendStr(b, s)
	}
	return b
}

func appendSortedMap[V any](b []byte, enc *stateEncoder, m map[string]V, val func([]byte, V) []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(m)))
	if len(m) == 0 {
		return b
	}
	keys := enc.keys[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b = appendStr(b, k)
		b = val(b, m[k])
	}
	clear(keys)
	enc.keys = keys[:0]
	return b
}

// sortedSeqs returns the seqs of a map as a sorted slice.
func sortedSeqs(m map[string]uint64) []groupSeq {
	out := make([]groupSeq, 0, len(m))
	for _, g := range slices.Sorted(maps.Keys(m)) {
		out = append(out, groupSeq{group: g, seq: m[g]})
	}
	return out
}

// stateBuf is a decoded member state and the storage its pointers and
// slices refer to, reused from member to member.
type stateBuf struct {
	st     MemberState
	strs   [numProfileStrings]string
	ins    [numStateInstants]rule.Millis
	lists  []string
	seqs   []groupSeq
	access []groupSeq
	hist   []uint64
	utm    map[string]string
	cust   map[string]json.RawMessage
	form   map[string]json.RawMessage
}

// reset empties the buffer for a new member, keeping its storage.
func (d *stateBuf) reset() {
	clear(d.lists)
	d.lists = d.lists[:0]
	clear(d.seqs)
	d.seqs = d.seqs[:0]
	clear(d.access)
	d.access = d.access[:0]
	d.hist = d.hist[:0]
	clear(d.utm)
	clear(d.cust)
	clear(d.form)
	d.st = MemberState{}
	d.strs = [numProfileStrings]string{}
}

// decode decodes a binary state into the buffer. The state's strings and
// values are views of v, which must never be modified afterwards.
func (d *stateBuf) decode(v []byte) error {
	d.reset()
	if len(v) == 0 || v[0] != binaryStateVersion {
		return errBinaryState
	}
	r := binReader{b: v, off: 1}
	flags := r.uvarint()
	if flags&^flagsKnown != 0 {
		return errBinaryState
	}
	st := &d.st
	st.ID = r.str()
	for k := range numProfileStrings {
		if flags&(1<<k) != 0 {
			d.strs[k] = r.str()
			*profileStr(&st.Profile, k) = &d.strs[k]
		}
	}
	for i, dst := range instants(st) {
		if flags&(flagInvitedAt<<i) != 0 {
			d.ins[i] = r.varint()
			*dst = &d.ins[i]
		}
	}
	st.ActN = r.uint32()
	st.ActTypes = r.uint32()
	tags := r.strList(&d.lists)
	static := r.strList(&d.lists)
	d.utm = readMap(&r, d.utm, func(r *binReader) string { return r.str() })
	d.cust = readMap(&r, d.cust, func(r *binReader) json.RawMessage { return r.bytes() })
	d.form = readMap(&r, d.form, func(r *binReader) json.RawMessage { return r.bytes() })
	var groups [2]int
	if flags&flagGroupsBySeq == 0 {
		groups = r.strList(&d.lists)
	}
	n := r.count(2)
	for range n {
		g := groupSeq{group: r.str(), seq: r.uvarint()}
		if flags&flagSince != 0 && g.seq%2 == 1 {
			g.since = r.varint()
		}
		if len(d.seqs) > 0 && d.seqs[len(d.seqs)-1].group >= g.group {
			return errBinaryState
		}
		d.seqs = append(d.seqs, g)
	}
	if flags&flagAccess != 0 {
		n := r.count(2)
		for range n {
			a := groupSeq{group: r.str(), seq: r.uvarint()}
			if len(d.access) > 0 && d.access[len(d.access)-1].group >= a.group {
				return errBinaryState
			}
			d.access = append(d.access, a)
		}
		st.accessSeqs = d.access
	}
	if flags&flagHistory != 0 {
		n := r.count(1)
		prev := uint64(0)
		for i := range n {
			inc := r.uvarint()
			if i > 0 && inc == 0 {
				return errBinaryState
			}
			prev += inc
			d.hist = append(d.hist, prev)
		}
		st.histKeys = d.hist
	}
	if flags&flagGroupsBySeq != 0 {
		groups[0] = len(d.lists)
		for _, s := range d.seqs {
			if s.seq%2 == 1 {
				d.lists = append(d.lists, s.group)
			}
		}
		groups[1] = len(d.lists)
	}
	if r.bad || r.off != len(v) {
		return errBinaryState
	}
	st.Profile.Tags = span(d.lists, tags)
	st.Profile.StaticGroups = span(d.lists, static)
	st.Groups = span(d.lists, groups)
	if len(d.utm) > 0 {
		st.Profile.UTM = d.utm
	}
	if len(d.cust) > 0 {
		st.Custom = d.cust
	}
	if len(d.form) > 0 {
		st.Form = d.form
	}
	return nil
}

// span is the sub-slice [s[0], s[1]) of lists, nil when empty, with its
// capacity cut so that appending to it never writes into lists.
func span(lists []string, s [2]int) []string {
	if s[0] == s[1] {
		return nil
	}
	return lists[s[0]:s[1]:s[1]]
}

// decodeBinaryState decodes a binary state into a new MemberState that
// does not refer to v.
func decodeBinaryState(v []byte) (*MemberState, error) {
	d := &stateBuf{}
	if err := d.decode(slices.Clone(v)); err != nil {
		return nil, err
	}
	st := d.st
	if len(d.seqs) > 0 {
		st.Seqs = make(map[string]uint64, len(d.seqs))
		for _, s := range d.seqs {
			st.Seqs[s.group] = s.seq
			if s.since != 0 {
				if st.since == nil {
					st.since = map[string]rule.Millis{}
				}
				st.since[s.group] = s.since
			}
		}
	}
	if len(d.access) > 0 {
		st.Access = make(map[string]uint64, len(d.access))
		for _, s := range d.access {
			st.Access[s.group] = s.seq
		}
	}
	st.accessSeqs = nil
	st.histKeys = slices.Clone(d.hist)
	return &st, nil
}

// binReader reads the parts of a binary state; bad is set, and zero
// values returned, once anything is out of bounds.
type binReader struct {
	b   []byte
	off int
	bad bool
}

func (r *binReader) uvarint() uint64 {
	if r.bad {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.off += n
	return v
}

func (r *binReader) varint() int64 {
	if r.bad {
		return 0
	}
	v, n := binary.Varint(r.b[r.off:])
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.off += n
	return v
}

func (r *binReader) uint32() uint32 {
	v := r.uvarint()
	if v > math.MaxUint32 {
		r.bad = true
		return 0
	}
	return uint32(v)
}

// count reads a count of items of at least minBytes bytes each, checked
// against the bytes left.
func (r *binReader) count(minBytes int) int {
	v := r.uvarint()
	if v > uint64(len(r.b)-r.off)/uint64(minBytes) {
		r.bad = true
		return 0
	}
	return int(v)
}

// bytes reads a length-prefixed byte string: a view of the input whose
// capacity ends with it.
func (r *binReader) bytes() []byte {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.b)-r.off) {
		r.bad = true
		return nil
	}
	end := r.off + int(n)
	v := r.b[r.off:end:end]
	r.off = end
	return v
}

// str reads a length-prefixed string, a view of the input.
func (r *binReader) str() string {
	v := r.bytes()
	if len(v) == 0 {
		return ""
	}
	return unsafe.String(&v[0], len(v))
}

// strList appends a list of strings to lists and returns where it is.
func (r *binReader) strList(lists *[]string) [2]int {
	n := r.count(1)
	start := len(*lists)
	for range n {
		*lists = append(*lists, r.str())
	}
	return [2]int{start, len(*lists)}
}

// readMap reads a map into m (allocated when needed; emptied by the
// caller).
func readMap[V any](r *binReader, m map[string]V, val func(*binReader) V) map[string]V {
	n := r.count(2)
	if n > 0 && m == nil {
		m = make(map[string]V, n)
	}
	for range n {
		k := r.str()
		m[k] = val(r)
	}
	return m
}
