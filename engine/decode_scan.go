package engine

import "bytes"

// A single-pass JSON reader for member records. It accepts exactly the texts
// encoding/json accepts (the RFC 8259 grammar, at most maxJSONDepth nested
// arrays and objects) and hands out the exact bytes of each value, as
// json.RawMessage would hold them. It does not check UTF-8: DecodeMember
// checks the whole record once before reading it.

// maxJSONDepth is encoding/json's nesting limit: deeper texts are invalid.
const maxJSONDepth = 10000

// jsonKind is the type of a JSON value, known from its first byte.
type jsonKind uint8

const (
	jsonBad jsonKind = iota // not a valid value
	jsonStr
	jsonNum
	jsonObj
	jsonArr
	jsonTrue
	jsonFalse
	jsonNull
)

// rawValue is one value of a JSON text: its exact bytes (nil when the field
// is absent), its kind and, for strings, whether it holds escapes (a string
// without escapes decodes to the bytes between its quotes).
type rawValue struct {
	b   []byte
	k   jsonKind
	esc bool
}

func (v rawValue) present() bool { return v.b != nil }

// absentOrNull mirrors the decoders' "absent or JSON null" checks.
func (v rawValue) absentOrNull() bool { return v.b == nil || v.k == jsonNull }

// plain returns the decoded bytes of a string without escapes.
func (v rawValue) plain() ([]byte, bool) {
	if v.k != jsonStr || v.esc {
		return nil, false
	}
	return v.b[1 : len(v.b)-1], true
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(data []byte, i int) int {
	for i < len(data) && isJSONSpace(data[i]) {
		i++
	}
	return i
}

// scanString reads the string starting at data[i] == '"'; it returns the
// index after the closing quote and whether the string holds escapes.
func scanString(data []byte, i int) (end int, esc, ok bool) {
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

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

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
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	default:
		return 0, false
	}
	if i < len(data) && data[i] == '.' {
		i++
		if i >= len(data) || !isDigit(data[i]) {
			return 0, false
		}
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) || !isDigit(data[i]) {
			return 0, false
		}
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	}
	return i, true
}

// isJSONNumber reports whether b is exactly one JSON number.
func isJSONNumber(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	end, ok := scanNumber(b, 0)
	return ok && end == len(b)
}

// scanValue reads the value starting at data[i] (not white space) inside
// depth enclosing arrays and objects.
func scanValue(data []byte, i, depth int) (v rawValue, end int) {
	if i >= len(data) {
		return rawValue{}, 0
	}
	start := i
	k := jsonBad
	esc := false
	ok := false
	switch c := data[i]; c {
	case '"':
		k = jsonStr
		end, esc, ok = scanString(data, i)
	case '{':
		k = jsonObj
		end, ok = scanObject(data, i, depth+1)
	case '[':
		k = jsonArr
		end, ok = scanArray(data, i, depth+1)
	case 't':
		k, end, ok = jsonTrue, i+4, bytes.HasPrefix(data[i:], []byte("true"))
	case 'f':
		k, end, ok = jsonFalse, i+5, bytes.HasPrefix(data[i:], []byte("false"))
	case 'n':
		k, end, ok = jsonNull, i+4, bytes.HasPrefix(data[i:], []byte("null"))
	default:
		if c == '-' || isDigit(c) {
			k = jsonNum
			end, ok = scanNumber(data, i)
		}
	}
	if !ok {
		return rawValue{}, 0
	}
	return rawValue{b: data[start:end:end], k: k, esc: esc}, end
}

// scanObject reads the object starting at data[i] == '{' at the given depth
// (1 for a top-level object).
func scanObject(data []byte, i, depth int) (int, bool) {
	if depth > maxJSONDepth {
		return 0, false
	}
	it := objectIter{data: data, i: i + 1, depth: depth}
	for {
		if _, _, _, ok := it.next(); !ok {
			return it.i, !it.bad
		}
	}
}

func scanArray(data []byte, i, depth int) (int, bool) {
	if depth > maxJSONDepth {
		return 0, false
	}
	it := arrayIter{data: data, i: i + 1, depth: depth}
	for {
		if _, ok := it.next(); !ok {
			return it.i, !it.bad
		}
	}
}

// objectIter walks the members of an object. Start it just after the '{';
// when next reports false, bad tells a syntax error from the end of the
// object, and i is the index after the '}'.
type objectIter struct {
	data  []byte
	i     int
	depth int // of the object
	n     int // members read
	bad   bool
	done  bool
}

// next returns the next member: its key between the quotes, whether the key
// holds escapes, and its value.
func (it *objectIter) next() (key []byte, keyEsc bool, v rawValue, ok bool) {
	if it.done {
		return nil, false, rawValue{}, false
	}
	data := it.data
	i := skipSpace(data, it.i)
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
			i = skipSpace(data, i+1)
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
	kend, kesc, kok := scanString(data, i)
	if !kok {
		return it.fail()
	}
	key = data[i+1 : kend-1]
	i = skipSpace(data, kend)
	if i >= len(data) || data[i] != ':' {
		return it.fail()
	}
	i = skipSpace(data, i+1)
	v, end := scanValue(data, i, it.depth)
	if v.k == jsonBad {
		return it.fail()
	}
	it.i, it.n = end, it.n+1
	return key, kesc, v, true
}

// nextKey is next with the key unescaped.
func (it *objectIter) nextKey() (key []byte, v rawValue, ok bool) {
	key, esc, v, ok := it.next()
	if ok && esc {
		key = unquoteKey(key)
	}
	return key, v, ok
}

func (it *objectIter) fail() ([]byte, bool, rawValue, bool) {
	it.bad, it.done = true, true
	return nil, false, rawValue{}, false
}

func (it *objectIter) end(i int) ([]byte, bool, rawValue, bool) {
	it.i, it.done = i, true
	return nil, false, rawValue{}, false
}

// arrayIter walks the elements of an array, like objectIter.
type arrayIter struct {
	data  []byte
	i     int
	depth int
	n     int
	bad   bool
	done  bool
}

func (it *arrayIter) next() (rawValue, bool) {
	if it.done {
		return rawValue{}, false
	}
	data := it.data
	i := skipSpace(data, it.i)
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
			i = skipSpace(data, i+1)
		default:
			return it.fail()
		}
	}
	v, end := scanValue(data, i, it.depth)
	if v.k == jsonBad {
		return it.fail()
	}
	it.i, it.n = end, it.n+1
	return v, true
}

func (it *arrayIter) fail() (rawValue, bool) {
	it.bad, it.done = true, true
	return rawValue{}, false
}

func (it *arrayIter) end(i int) (rawValue, bool) {
	it.i, it.done = i, true
	return rawValue{}, false
}

// scanJSON reads a whole JSON text: one value between optional white space.
func scanJSON(data []byte) (rawValue, bool) {
	i := skipSpace(data, 0)
	v, end := scanValue(data, i, 0)
	if v.k == jsonBad || skipSpace(data, end) != len(data) {
		return rawValue{}, false
	}
	return v, true
}

// members returns an iterator over the members of v, an object read by
// scanValue or scanJSON (and so already known to be valid).
func (v rawValue) members() objectIter {
	return objectIter{data: v.b, i: 1, depth: 1}
}

// elements returns an iterator over the elements of v, an array read by
// scanValue or scanJSON.
func (v rawValue) elements() arrayIter {
	return arrayIter{data: v.b, i: 1, depth: 1}
}

// appendCompact appends v without the white space outside its strings, as
// json.Compact writes it (v is valid JSON).
func appendCompact(dst, v []byte) []byte {
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
