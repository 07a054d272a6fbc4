package jsonscan

import "bytes"

// A single-pass JSON reader for member records. It accepts exactly the texts
// encoding/json accepts (the RFC 8259 grammar, at most MaxDepth nested
// arrays and objects) and hands out the exact bytes of each value, as
// json.RawMessage would hold them. It does not check UTF-8: DecodeMember
// checks the whole record once before reading it.

// MaxDepth is encoding/json's nesting limit: deeper texts are invalid.
const MaxDepth = 10000

// Kind is the type of a JSON value, known from its first byte.
type Kind uint8

// The kinds of JSON values.
const (
	Bad Kind = iota // not a valid value (or, in a Value, an absent one)
	Str
	Num
	Obj
	Arr
	True
	False
	Null
)

// Value is one value of a JSON text: its exact bytes (nil when the field
// is absent), its kind and, for strings, whether it holds escapes (a string
// without escapes decodes to the bytes between its quotes).
type Value struct {
	Bytes []byte
	Kind  Kind
	Esc   bool
}

// Present reports whether the value was found (its bytes are not nil).
func (v Value) Present() bool { return v.Bytes != nil }

// AbsentOrNull mirrors the decoders' "absent or JSON null" checks.
func (v Value) AbsentOrNull() bool { return v.Bytes == nil || v.Kind == Null }

// Plain returns the decoded bytes of a string without escapes.
func (v Value) Plain() ([]byte, bool) {
	if v.Kind != Str || v.Esc {
		return nil, false
	}
	return v.Bytes[1 : len(v.Bytes)-1], true
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// SkipSpace returns the index of the first byte at or after i that is not
// JSON white space.
func SkipSpace(data []byte, i int) int {
	for i < len(data) && isSpace(data[i]) {
		i++
	}
	return i
}

// ScanString reads the string starting at data[i] == '"'; it returns the
// index after the closing quote and whether the string holds escapes.
func ScanString(data []byte, i int) (end int, esc, ok bool) {
	i++
	for i < len(data) {
		c := data[i]
		if plainByte[c] {
			i++
			continue
		}
		switch {
		case c == '"':
			return i + 1, esc, true
		case c == '\\':
			esc = true
			i++
			if i >= len(data) {
				return 0, false, false
			}
			switch data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if i+4 >= len(data) || !isHex(data[i+1]) || !isHex(data[i+2]) || !isHex(data[i+3]) || !isHex(data[i+4]) {
					return 0, false, false
				}
				i += 5
			default:
				return 0, false, false
			}
		case c < 0x20:
			return 0, false, false
		default:
			i++
		}
	}
	return 0, false, false
}

// plainByte tells the bytes that stand for themselves in a JSON string.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// IsDigit reports whether c is an ASCII digit.
func IsDigit(c byte) bool { return '0' <= c && c <= '9' }

// scanNumber reads the number starting at data[i]; the byte after it is the
// caller's to check.
func scanNumber(data []byte, i int) (int, bool) {
	if data[i] == '-' {
		i++
		if i >= len(data) {
			return 0, false
		}
	}
	switch {
	case data[i] == '0':
		i++
	case '1' <= data[i] && data[i] <= '9':
		i++
		for i < len(data) && IsDigit(data[i]) {
			i++
		}
	default:
		return 0, false
	}
	if i < len(data) && data[i] == '.' {
		i++
		if i >= len(data) || !IsDigit(data[i]) {
			return 0, false
		}
		for i < len(data) && IsDigit(data[i]) {
			i++
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) || !IsDigit(data[i]) {
			return 0, false
		}
		for i < len(data) && IsDigit(data[i]) {
			i++
		}
	}
	return i, true
}

// IsNumber reports whether b is exactly one JSON number.
func IsNumber(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	end, ok := scanNumber(b, 0)
	return ok && end == len(b)
}

// scanValue reads the value starting at data[i] (not white space) inside
// depth enclosing arrays and objects.
func scanValue(data []byte, i, depth int) (v Value, end int) {
	if i >= len(data) {
		return Value{}, 0
	}
	start := i
	k := Bad
	esc := false
	ok := false
	switch c := data[i]; c {
	case '"':
		k = Str
		end, esc, ok = ScanString(data, i)
	case '{':
		k = Obj
		end, ok = scanObject(data, i, depth+1)
	case '[':
		k = Arr
		end, ok = scanArray(data, i, depth+1)
	case 't':
		k, end, ok = True, i+4, bytes.HasPrefix(data[i:], []byte("true"))
	case 'f':
		k, end, ok = False, i+5, bytes.HasPrefix(data[i:], []byte("false"))
	case 'n':
		k, end, ok = Null, i+4, bytes.HasPrefix(data[i:], []byte("null"))
	default:
		if c == '-' || IsDigit(c) {
			k = Num
			end, ok = scanNumber(data, i)
		}
	}
	if !ok {
		return Value{}, 0
	}
	return Value{Bytes: data[start:end:end], Kind: k, Esc: esc}, end
}

// scanObject reads the object starting at data[i] == '{' at the given depth
// (1 for a top-level object).
func scanObject(data []byte, i, depth int) (int, bool) {
	if depth > MaxDepth {
		return 0, false
	}
	it := Object(data, i, depth)
	for {
		if _, _, _, ok := it.Next(); !ok {
			return it.i, !it.bad
		}
	}
}

func scanArray(data []byte, i, depth int) (int, bool) {
	if depth > MaxDepth {
		return 0, false
	}
	it := Array(data, i, depth)
	for {
		if _, ok := it.Next(); !ok {
			return it.i, !it.bad
		}
	}
}

// ObjectIter walks the members of an object. When Next reports false, Bad
// tells a syntax error from the end of the object, and Pos is the index
// after the '}'.
type ObjectIter struct {
	data  []byte
	i     int
	depth int // of the object
	n     int // members read
	bad   bool
	done  bool
}

// Object returns an iterator over the object that starts at data[open] ==
// '{', at the given depth (1 for a top-level object).
func Object(data []byte, open, depth int) ObjectIter {
	return ObjectIter{data: data, i: open + 1, depth: depth}
}

// Pos is the index after what the iterator read last: after a member's
// value, or after the '}' at the end.
func (it *ObjectIter) Pos() int { return it.i }

// Bad reports whether the iterator stopped at a syntax error.
func (it *ObjectIter) Bad() bool { return it.bad }

// Next returns the next member: its key between the quotes, whether the key
// holds escapes, and its value.
func (it *ObjectIter) Next() (key []byte, keyEsc bool, v Value, ok bool) {
	if it.done {
		return nil, false, Value{}, false
	}
	data := it.data
	i := SkipSpace(data, it.i)
	if i >= len(data) {
		return it.fail()
	}
	if it.n == 0 {
		if data[i] == '}' {
			return it.end(i + 1)
		}
	} else {
		switch data[i] {
		case '}':
			return it.end(i + 1)
		case ',':
			i = SkipSpace(data, i+1)
			if i >= len(data) {
				return it.fail()
			}
		default:
			return it.fail()
		}
	}
	if data[i] != '"' {
		return it.fail()
	}
	kend, kesc, kok := ScanString(data, i)
	if !kok {
		return it.fail()
	}
	key = data[i+1 : kend-1]
	i = SkipSpace(data, kend)
	if i >= len(data) || data[i] != ':' {
		return it.fail()
	}
	i = SkipSpace(data, i+1)
	v, end := scanValue(data, i, it.depth)
	if v.Kind == Bad {
		return it.fail()
	}
	it.i, it.n = end, it.n+1
	return key, kesc, v, true
}

// NextKey is Next with the key unescaped.
func (it *ObjectIter) NextKey() (key []byte, v Value, ok bool) {
	key, esc, v, ok := it.Next()
	if ok && esc {
		key = UnquoteKey(key)
	}
	return key, v, ok
}

func (it *ObjectIter) fail() ([]byte, bool, Value, bool) {
	it.bad, it.done = true, true
	return nil, false, Value{}, false
}

func (it *ObjectIter) end(i int) ([]byte, bool, Value, bool) {
	it.i, it.done = i, true
	return nil, false, Value{}, false
}

// ArrayIter walks the elements of an array, like ObjectIter.
type ArrayIter struct {
	data  []byte
	i     int
	depth int
	n     int
	bad   bool
	done  bool
}

// Array returns an iterator over the array that starts at data[open] ==
// '[', at the given depth (1 for a top-level array).
func Array(data []byte, open, depth int) ArrayIter {
	return ArrayIter{data: data, i: open + 1, depth: depth}
}

// Pos is the index after what the iterator read last: after an element, or
// after the ']' at the end.
func (it *ArrayIter) Pos() int { return it.i }

// Bad reports whether the iterator stopped at a syntax error.
func (it *ArrayIter) Bad() bool { return it.bad }

// Next returns the next element.
func (it *ArrayIter) Next() (Value, bool) {
	if it.done {
		return Value{}, false
	}
	data := it.data
	i := SkipSpace(data, it.i)
	if i >= len(data) {
		return it.fail()
	}
	if it.n == 0 {
		if data[i] == ']' {
			return it.end(i + 1)
		}
	} else {
		switch data[i] {
		case ']':
			return it.end(i + 1)
		case ',':
			i = SkipSpace(data, i+1)
		default:
			return it.fail()
		}
	}
	v, end := scanValue(data, i, it.depth)
	if v.Kind == Bad {
		return it.fail()
	}
	it.i, it.n = end, it.n+1
	return v, true
}

func (it *ArrayIter) fail() (Value, bool) {
	it.bad, it.done = true, true
	return Value{}, false
}

func (it *ArrayIter) end(i int) (Value, bool) {
	it.i, it.done = i, true
	return Value{}, false
}

// Scan reads a whole JSON text: one value between optional white space.
func Scan(data []byte) (Value, bool) {
	i := SkipSpace(data, 0)
	v, end := scanValue(data, i, 0)
	if v.Kind == Bad || SkipSpace(data, end) != len(data) {
		return Value{}, false
	}
	return v, true
}

// Members returns an iterator over the members of v, an object read by
// scanValue or Scan (and so already known to be valid).
func (v Value) Members() ObjectIter {
	return ObjectIter{data: v.Bytes, i: 1, depth: 1}
}

// Elements returns an iterator over the elements of v, an array read by
// scanValue or Scan.
func (v Value) Elements() ArrayIter {
	return ArrayIter{data: v.Bytes, i: 1, depth: 1}
}

// AppendCompact appends v without the white space outside its strings, as
// json.Compact writes it (v is valid JSON).
func AppendCompact(dst, v []byte) []byte {
	start := 0
	inString := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case ' ', '\t', '\n', '\r':
			dst = append(dst, v[start:i]...)
			start = i + 1
		}
	}
	return append(dst, v[start:]...)
}
