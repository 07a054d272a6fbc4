package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Millis is an instant as milliseconds since the Unix epoch (UTC). The engine
// works at millisecond resolution throughout; finer RFC 3339 fractions are
// truncated.
type Millis = int64

// MaxIDBytes is the longest id accepted (SPEC §4).
const MaxIDBytes = 256

var errNotTimestamp = errors.New("expected an RFC 3339 timestamp with an offset or integer epoch milliseconds")

// parseTimestamp accepts an RFC 3339 string with an offset or a JSON integer
// of epoch milliseconds.
func parseTimestamp(raw json.RawMessage) (Millis, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return 0, errNotTimestamp
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, errNotTimestamp
		}
		return parseTimestampString(s)
	}
	return parseEpochMillis(raw)
}

func parseTimestampString(s string) (Millis, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("%q is not an RFC 3339 timestamp with an offset", s)
	}
	return t.UnixMilli(), nil
}

func parseEpochMillis(raw json.RawMessage) (Millis, error) {
	var f json.Number
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&f); err != nil {
		return 0, errNotTimestamp
	}
	n, err := f.Int64()
	if err != nil {
		return 0, fmt.Errorf("%s is not an integer of epoch milliseconds", string(raw))
	}
	return n, nil
}

// FormatMillis renders an instant as RFC 3339 UTC with millisecond precision.
func FormatMillis(ms Millis) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// ParseTime parses a flag value: RFC 3339 or epoch milliseconds.
func ParseTime(s string) (Millis, error) {
	if s == "" {
		return 0, errors.New("empty time")
	}
	if s[0] >= '0' && s[0] <= '9' && !strings.ContainsAny(s, "-:T") {
		return parseEpochMillis(json.RawMessage(s))
	}
	return parseTimestampString(s)
}

// checkID validates an id: non-empty, at most MaxIDBytes, valid UTF-8, no NUL.
func checkID(what, id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%s must be a non-empty string", what)
	case len(id) > MaxIDBytes:
		return fmt.Errorf("%s is %d bytes, longer than the limit of %d bytes", what, len(id), MaxIDBytes)
	case !utf8.ValidString(id):
		return fmt.Errorf("%s is not valid UTF-8", what)
	case strings.IndexByte(id, 0) >= 0:
		return fmt.Errorf("%s contains a NUL character", what)
	}
	return nil
}

// checkKeyID validates an id that is also a key segment (spot, group): it
// may not contain '/'.
func checkKeyID(what, id string) error {
	if err := checkID(what, id); err != nil {
		return err
	}
	if strings.IndexByte(id, '/') >= 0 {
		return fmt.Errorf("%s %q contains '/', which is reserved as the key separator", what, id)
	}
	return nil
}

// fold returns the simple-case-folded form of s: every rune is replaced by
// a canonical member of its Unicode simple case-folding orbit (the smallest
// one, lower-cased when that is an ASCII capital), so fold(a) == fold(b)
// exactly when a and b are equal under simple case folding.
func fold(s string) string {
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		b.WriteRune(foldRune(r))
	}
	return b.String()
}

func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}
	low := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < low {
			low = f
		}
	}
	if 'A' <= low && low <= 'Z' {
		low += 'a' - 'A'
	}
	return low
}

// jsonNumber decodes a finite JSON number.
func jsonNumber(raw json.RawMessage) (float64, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return 0, false
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

func isNull(raw json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// jsonString decodes a JSON string.
func jsonString(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// jsonStrings decodes a JSON array of strings (null elements are refused).
func jsonStrings(raw json.RawMessage) ([]string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '[' {
		return nil, false
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, false
	}
	ss := make([]string, len(elems))
	for i, e := range elems {
		s, ok := jsonString(e)
		if !ok {
			return nil, false
		}
		ss[i] = s
	}
	return ss, true
}

// jsonBool decodes a JSON boolean.
func jsonBool(raw json.RawMessage) (bool, bool) {
	switch string(bytes.TrimSpace(raw)) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}
