package jsonscan

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"
)

// DecodeNumber decodes a finite JSON number.
func DecodeNumber(raw json.RawMessage) (float64, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return 0, false
	}
	if IsNumber(raw) {
		// What encoding/json does for a float64.
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return 0, false
		}
		return f, true
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

// IsNull reports whether raw is the JSON literal null.
func IsNull(raw json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// DecodeString decodes a JSON string.
func DecodeString(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	if p, ok := PlainString(raw); ok {
		return string(p), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// DecodeStrings decodes a JSON array of strings (null elements are refused).
func DecodeStrings(raw json.RawMessage) ([]string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '[' {
		return nil, false
	}
	if n, ok := plainStrings(raw, "", nil); ok {
		// One string holds the elements.
		ss := make([]string, n)
		plainStrings(raw, string(raw), ss)
		return ss, true
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, false
	}
	ss := make([]string, len(elems))
	for i, e := range elems {
		s, ok := DecodeString(e)
		if !ok {
			return nil, false
		}
		ss[i] = s
	}
	return ss, true
}

// DecodeBool decodes a JSON boolean.
func DecodeBool(raw json.RawMessage) (bool, bool) {
	switch string(bytes.TrimSpace(raw)) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// PlainString returns the bytes between the quotes of raw when raw is a
// JSON string without escapes and with valid UTF-8 only: a string that
// decodes to exactly those bytes.
func PlainString(raw []byte) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, false
	}
	p := raw[1 : len(raw)-1]
	ascii := true
	for _, c := range p {
		if c < 0x20 || c == '"' || c == '\\' {
			return nil, false
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	if !ascii && !utf8.Valid(p) {
		return nil, false
	}
	return p, true
}

// plainStrings counts the elements of raw, and stores them in out unless
// out is nil, when raw is a JSON array of strings without escapes in valid
// UTF-8 and nothing follows it; ok is false for anything else. The elements
// stored are substrings of text, which holds the bytes of raw.
func plainStrings(raw []byte, text string, out []string) (n int, ok bool) {
	if len(raw) < 2 || raw[0] != '[' || !utf8.Valid(raw) {
		return 0, false
	}
	i := SkipSpace(raw, 1)
	if i < len(raw) && raw[i] == ']' {
		return 0, i+1 == len(raw)
	}
	for {
		if i >= len(raw) || raw[i] != '"' {
			return 0, false
		}
		end, esc, ok := ScanString(raw, i)
		if !ok || esc {
			return 0, false
		}
		if out != nil {
			out[n] = text[i+1 : end-1]
		}
		n++
		i = SkipSpace(raw, end)
		switch {
		case i >= len(raw):
			return 0, false
		case raw[i] == ']':
			return n, i+1 == len(raw)
		case raw[i] != ',':
			return 0, false
		}
		i = SkipSpace(raw, i+1)
	}
}

// UnquoteKey decodes an object key (the bytes between its quotes) that
// holds escapes, as encoding/json decodes map keys.
func UnquoteKey(key []byte) []byte {
	q := make([]byte, 0, len(key)+2)
	q = append(append(append(q, '"'), key...), '"')
	var s string
	if err := json.Unmarshal(q, &s); err != nil {
		return key // not reached: the key was scanned as a valid string
	}
	return []byte(s)
}

// AppendHTMLEscaped appends the JSON string or literal v as json.Marshal
// writes a json.RawMessage holding it: with '<', '>', '&', U+2028 and
// U+2029 escaped.
func AppendHTMLEscaped(dst, v []byte) []byte {
	const hex = "0123456789abcdef"
	start := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '<' || c == '>' || c == '&' {
			dst = append(dst, v[start:i]...)
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			start = i + 1
		}
		if c == 0xE2 && i+2 < len(v) && v[i+1] == 0x80 && v[i+2]&^1 == 0xA8 {
			dst = append(dst, v[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[v[i+2]&0xF])
			start = i + 3
		}
	}
	return append(dst, v[start:]...)
}
