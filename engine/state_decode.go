package engine

import (
	"encoding/json"
	"math"
	"unicode/utf8"

	"github.com/smartgroups/smartgroups/engine/internal/jsonscan"
	"github.com/smartgroups/smartgroups/engine/rule"
)

// Stored member states are read without encoding/json: every member a
// batch or a query touches that is not cached is decoded. decodeStateFast
// reads the texts appendMemberState writes (and those encoding/json.Marshal
// wrote): the known keys in any order, strings with or without escapes,
// null for any field or element, integers in range. It gives up on
// anything else — a key with escapes, a key encoding/json would match
// case-insensitively or that is not ASCII, a duplicate key, invalid UTF-8, a
// value of another type, a number with a fraction or an exponent — and the
// caller then decodes with json.Unmarshal, so that every text decodes
// exactly as encoding/json decodes it into a MemberState (or queryState).
//
// One scan (engine/internal/jsonscan) checks the whole text and finds the top-level
// fields; the profile, lists and maps are walked again. All strings of a
// state are substrings of one copy of the text, the custom and form values
// share one buffer and the string lists one array: nothing refers to the
// input, which the store may reuse.

// The top-level keys of a stored MemberState. queryState has the first
// numQueryKeys of them.
const (
	stID = iota
	stProfile
	stCustom
	stForm
	stLastAct
	stGroups
	stActN
	stActTypes
	stTimer
	stSeqs
	stAccess
	numStateKeys
	numQueryKeys = stActN
)

var stateKeys = [numStateKeys]string{"id", "p", "c", "f", "la", "g", "an", "at", "t", "q", "x"}

func stateKey(key []byte) int {
	switch string(key) {
	case "id":
		return stID
	case "p":
		return stProfile
	case "c":
		return stCustom
	case "f":
		return stForm
	case "la":
		return stLastAct
	case "g":
		return stGroups
	case "an":
		return stActN
	case "at":
		return stActTypes
	case "t":
		return stTimer
	case "q":
		return stSeqs
	case "x":
		return stAccess
	}
	return -1
}

// The keys of a stored Profile: the string fields, then the instants, then
// the rest.
const (
	prFirstName = iota
	prLastName
	prEmail
	prTitle
	prStatus
	prRole
	prLanguage
	prInvitedAt
	prRegisteredAt
	prLastActivityAt
	prTags
	prUTM
	prStaticGroups
	numProfileKeys
	numProfileStrings = prInvitedAt
)

var profileKeys = [numProfileKeys]string{"first_name", "last_name", "email", "title", "status", "role",
	"language", "invited_at", "registered_at", "last_activity_at", "tags", "utm", "static_groups"}

func profileKey(key []byte) int {
	switch string(key) {
	case "first_name":
		return prFirstName
	case "last_name":
		return prLastName
	case "email":
		return prEmail
	case "title":
		return prTitle
	case "status":
		return prStatus
	case "role":
		return prRole
	case "language":
		return prLanguage
	case "invited_at":
		return prInvitedAt
	case "registered_at":
		return prRegisteredAt
	case "last_activity_at":
		return prLastActivityAt
	case "tags":
		return prTags
	case "utm":
		return prUTM
	case "static_groups":
		return prStaticGroups
	}
	return -1
}

// profileStr returns the field of p for a string key (below
// numProfileStrings).
func profileStr(p *rule.Profile, k int) **string {
	switch k {
	case prFirstName:
		return &p.FirstName
	case prLastName:
		return &p.LastName
	case prEmail:
		return &p.Email
	case prTitle:
		return &p.Title
	case prStatus:
		return &p.Status
	case prRole:
		return &p.Role
	default:
		return &p.Language
	}
}

// ignoredKey reports whether encoding/json skips key, the bytes of a key
// without escapes that is none of names exactly, when it decodes an object
// into a struct whose keys are names. It matches such a key to a field
// whose name is equal under Unicode case folding, so only an ASCII key
// unequal to every name under ASCII case folding is known to be skipped.
func ignoredKey(key []byte, names []string) bool {
	for _, c := range key {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	for _, n := range names {
		if asciiEqualFold(key, n) {
			return false
		}
	}
	return true
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// parseDigits parses b as a decimal integer without sign that fits a
// uint64.
func parseDigits(b []byte) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' || n > math.MaxUint64/10 {
			return 0, false
		}
		m := n*10 + uint64(c-'0')
		if m < n*10 {
			return 0, false
		}
		n = m
	}
	return n, true
}

// parseInt64 parses a JSON number that encoding/json stores in an int64:
// an integer without fraction or exponent, in range.
func parseInt64(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	n, ok := parseDigits(b)
	switch {
	case !ok:
		return 0, false
	case neg && n <= 1<<63:
		return int64(-n), true // -n wraps to the two's complement
	case !neg && n <= math.MaxInt64:
		return int64(n), true
	}
	return 0, false
}

// stateDecoder holds what the parts of one state are decoded from and into.
type stateDecoder struct {
	data []byte // the text
	text string // a copy of data: decoded strings are substrings of it
	raw  []byte // the custom and form values
}

// str decodes v, a string or null (which leaves a string empty) found at
// offset off of the text.
func (d *stateDecoder) str(v jsonscan.Value, off int) (string, bool) {
	switch {
	case v.Kind == jsonscan.Str && !v.Esc:
		return d.text[off+1 : off+len(v.Bytes)-1], true
	case v.Kind == jsonscan.Str:
		return jsonscan.DecodeString(v.Bytes)
	case v.Kind == jsonscan.Null:
		return "", true
	}
	return "", false
}

// key decodes an object key an jsonscan.ObjectIter over the text returned.
func (d *stateDecoder) key(key []byte, esc bool) (string, bool) {
	if esc {
		return string(jsonscan.UnquoteKey(key)), true
	}
	if len(key) == 0 {
		return "", true
	}
	// The key is a slice of the text that runs to the end of its capacity;
	// the address check makes sure.
	off := cap(d.data) - cap(key)
	if off < 0 || off+len(key) > len(d.data) || &d.data[off] != &key[0] {
		return "", false
	}
	return d.text[off : off+len(key)], true
}

// strList appends the elements of the array of strings at offset off of the
// text (depth is that of the array) to dst.
func (d *stateDecoder) strList(dst []string, off, depth int) ([]string, bool) {
	it := jsonscan.Array(d.data, off, depth)
	for {
		v, more := it.Next()
		if !more {
			break
		}
		s, ok := d.str(v, it.Pos()-len(v.Bytes))
		if !ok {
			return nil, false
		}
		dst = append(dst, s)
	}
	return dst, !it.Bad()
}

// objectMap decodes the object at offset off of the text (depth is that
// of the object) into a map, each value converted by val, which is given
// the value and its offset in the text.
func objectMap[V any](d *stateDecoder, off, depth int, val func(v jsonscan.Value, at int) (V, bool)) (map[string]V, bool) {
	type entry struct {
		k string
		v V
	}
	var buf [16]entry
	es := buf[:0]
	it := jsonscan.Object(d.data, off, depth)
	for {
		key, esc, v, more := it.Next()
		if !more {
			break
		}
		k, ok := d.key(key, esc)
		if !ok {
			return nil, false
		}
		x, ok := val(v, it.Pos()-len(v.Bytes))
		if !ok {
			return nil, false
		}
		es = append(es, entry{k, x})
	}
	if it.Bad() {
		return nil, false
	}
	m := make(map[string]V, len(es))
	for _, e := range es {
		m[e.k] = e.v
	}
	return m, true
}

// rawMap decodes the object at offset off of the text into a
// map[string]json.RawMessage whose values are the exact bytes of the
// object's values, copied to d.raw.
func (d *stateDecoder) rawMap(off int) (map[string]json.RawMessage, bool) {
	return objectMap(d, off, 2, func(v jsonscan.Value, _ int) (json.RawMessage, bool) {
		start := len(d.raw)
		d.raw = append(d.raw, v.Bytes...)
		return d.raw[start:len(d.raw):len(d.raw)], true
	})
}

// strMap decodes the object of strings at offset off of the text (depth is
// that of the object).
func (d *stateDecoder) strMap(off, depth int) (map[string]string, bool) {
	return objectMap(d, off, depth, d.str)
}

// seqMap decodes the object of uint64 at offset off of the text (null
// leaves a value 0).
func (d *stateDecoder) seqMap(off int) (map[string]uint64, bool) {
	return objectMap(d, off, 2, func(v jsonscan.Value, _ int) (uint64, bool) {
		switch v.Kind {
		case jsonscan.Num:
			return parseDigits(v.Bytes)
		case jsonscan.Null:
			return 0, true
		}
		return 0, false
	})
}

// fields reads the members of the object at offset off of the text (depth
// is that of the object) whose keys are names (matched by index, -1 for
// none), with the offsets of their values, and returns the offset after
// the object; ok is false for a syntax error, a key with escapes, a
// duplicate key or a key that is not surely skipped.
func (d *stateDecoder) fields(off, depth int, index func([]byte) int, names []string, vals []jsonscan.Value, offs []int) (end int, ok bool) {
	it := jsonscan.Object(d.data, off, depth)
	for {
		key, esc, v, more := it.Next()
		if !more {
			break
		}
		if esc {
			return 0, false
		}
		k := index(key)
		if k < 0 || k >= len(names) {
			if ignoredKey(key, names) {
				continue
			}
			return 0, false
		}
		if vals[k].Bytes != nil {
			return 0, false
		}
		vals[k], offs[k] = v, it.Pos()-len(v.Bytes)
	}
	return it.Pos(), !it.Bad()
}

// nullOr reports whether v is absent, null or of kind k, and whether it is
// of kind k.
func nullOr(v jsonscan.Value, k jsonscan.Kind) (ok, is bool) {
	switch v.Kind {
	case k:
		return true, true
	case jsonscan.Bad, jsonscan.Null: // absent or null
		return true, false
	}
	return false, false
}

// decodeStateFast decodes data as a MemberState when it can (see above),
// reading the first keys of stateKeys (numStateKeys for a MemberState,
// numQueryKeys for a queryState).
// readUint32 stores an absent, null or unsigned 32-bit number field in
// dst (absent and null leave it zero); false means the fast path cannot
// take the value.
func readUint32(v jsonscan.Value, dst *uint32) bool {
	switch {
	case v.Kind == jsonscan.Num:
		n, ok := parseDigits(v.Bytes)
		if !ok || n > math.MaxUint32 {
			return false
		}
		*dst = uint32(n)
	case v.Bytes != nil && v.Kind != jsonscan.Null:
		return false
	}
	return true
}

func decodeStateFast(data []byte, keys int) (*MemberState, bool) {
	if !utf8.Valid(data) {
		return nil, false
	}
	start := jsonscan.SkipSpace(data, 0)
	if start >= len(data) || data[start] != '{' {
		return nil, false
	}
	d := stateDecoder{data: data}
	var top [numStateKeys]jsonscan.Value
	var topOff [numStateKeys]int
	end, ok := d.fields(start, 1, stateKey, stateKeys[:keys], top[:], topOff[:])
	if !ok || jsonscan.SkipSpace(data, end) != len(data) {
		return nil, false
	}
	var prof [numProfileKeys]jsonscan.Value
	var profOff [numProfileKeys]int
	ok, isObj := nullOr(top[stProfile], jsonscan.Obj)
	if !ok {
		return nil, false
	}
	if isObj {
		if _, ok := d.fields(topOff[stProfile], 2, profileKey, profileKeys[:], prof[:], profOff[:]); !ok {
			return nil, false
		}
	}

	// Count the string and instant fields to allocate them at once.
	nStr, nMs := 0, 0
	for k := range numProfileStrings {
		ok, is := nullOr(prof[k], jsonscan.Str)
		if !ok {
			return nil, false
		}
		if is {
			nStr++
		}
	}
	instants := [...]jsonscan.Value{prof[prInvitedAt], prof[prRegisteredAt], prof[prLastActivityAt], top[stLastAct], top[stTimer]}
	for _, v := range instants {
		ok, is := nullOr(v, jsonscan.Num)
		if !ok {
			return nil, false
		}
		if is {
			nMs++
		}
	}

	d.text = string(data)
	st := &MemberState{}
	p := &st.Profile
	if v := top[stID]; v.Bytes != nil {
		if st.ID, ok = d.str(v, topOff[stID]); !ok {
			return nil, false
		}
	}
	if nStr > 0 {
		strs := make([]string, nStr)
		j := 0
		for k := range numProfileStrings {
			if v := prof[k]; v.Kind == jsonscan.Str {
				if strs[j], ok = d.str(v, profOff[k]); !ok {
					return nil, false
				}
				*profileStr(p, k) = &strs[j]
				j++
			}
		}
	}
	if nMs > 0 {
		ms := make([]rule.Millis, 0, nMs)
		for i, dst := range [...]**rule.Millis{&p.InvitedAt, &p.RegisteredAt, &p.LastActivityAt, &st.LastAct, &st.Timer} {
			if v := instants[i]; v.Kind == jsonscan.Num {
				n, ok := parseInt64(v.Bytes)
				if !ok {
					return nil, false
				}
				ms = append(ms, n)
				*dst = &ms[len(ms)-1]
			}
		}
	}
	if !readUint32(top[stActN], &st.ActN) || !readUint32(top[stActTypes], &st.ActTypes) {
		return nil, false
	}

	// The string lists share one array.
	var strBuf [32]string
	strs := strBuf[:0]
	type span struct {
		dst    *[]string
		lo, hi int
	}
	var spans [3]span
	nSpans := 0
	for _, l := range [...]struct {
		dst   *[]string
		v     jsonscan.Value
		off   int
		depth int
	}{{&st.Groups, top[stGroups], topOff[stGroups], 2}, {&p.Tags, prof[prTags], profOff[prTags], 3},
		{&p.StaticGroups, prof[prStaticGroups], profOff[prStaticGroups], 3}} {
		ok, is := nullOr(l.v, jsonscan.Arr)
		if !ok {
			return nil, false
		}
		if !is {
			continue
		}
		lo := len(strs)
		if strs, ok = d.strList(strs, l.off, l.depth); !ok {
			return nil, false
		}
		spans[nSpans] = span{l.dst, lo, len(strs)}
		nSpans++
	}
	if nSpans > 0 {
		all := make([]string, len(strs))
		copy(all, strs)
		for _, s := range spans[:nSpans] {
			*s.dst = all[s.lo:s.hi:s.hi]
		}
	}

	if ok, is := nullOr(prof[prUTM], jsonscan.Obj); !ok {
		return nil, false
	} else if is {
		if p.UTM, ok = d.strMap(profOff[prUTM], 3); !ok {
			return nil, false
		}
	}
	c, f := top[stCustom], top[stForm]
	okC, isC := nullOr(c, jsonscan.Obj)
	okF, isF := nullOr(f, jsonscan.Obj)
	if !okC || !okF {
		return nil, false
	}
	if isC || isF {
		d.raw = make([]byte, 0, len(c.Bytes)+len(f.Bytes))
	}
	if isC {
		if st.Custom, ok = d.rawMap(topOff[stCustom]); !ok {
			return nil, false
		}
	}
	if isF {
		if st.Form, ok = d.rawMap(topOff[stForm]); !ok {
			return nil, false
		}
	}
	if ok, is := nullOr(top[stSeqs], jsonscan.Obj); !ok {
		return nil, false
	} else if is {
		if st.Seqs, ok = d.seqMap(topOff[stSeqs]); !ok {
			return nil, false
		}
	}
	if ok, is := nullOr(top[stAccess], jsonscan.Obj); !ok {
		return nil, false
	} else if is {
		if st.Access, ok = d.seqMap(topOff[stAccess]); !ok {
			return nil, false
		}
	}
	return st, true
}

// decodeQueryState decodes the part of a stored member state that queries
// read (queryState) into a MemberState.
func decodeQueryState(v []byte) (*MemberState, error) {
	if st, ok := decodeStateFast(v, numQueryKeys); ok {
		return st, nil
	}
	var qs queryState
	if err := json.Unmarshal(v, &qs); err != nil {
		return nil, err
	}
	return &MemberState{ID: qs.ID, Profile: qs.Profile, Custom: qs.Custom, Form: qs.Form, LastAct: qs.LastAct,
		Groups: qs.Groups}, nil
}
