package file

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/smartgroups/smartgroups/engine"
)

// MaxLineBytes bounds one input line (a record value is at most 1 MiB by
// default; the envelope and escaping need some room).
const MaxLineBytes = 8 << 20

// ErrInvalidValue is returned when writing a line whose Value is not valid
// JSON.
var ErrInvalidValue = errors.New("file: the value of a line is not valid JSON")

// Line is one input line of `smartgroups process`:
// {"topic": …, "key": …, "value": …}. Key nil is a JSON null key; Value
// is the JSON of "value" as written, nil for a JSON null value (a
// tombstone). Record gives the engine record the line stands for.
type Line struct {
	Topic string
	Key   *string
	Value json.RawMessage
}

// Decode frames one input line as the record at offset (its 0-based line
// number) on partition 0, as Line.Record does. A line that is not an
// object {topic, key, value} with a string topic and a string or null key
// gives a record whose Err tells why and whose Value is the line, for the
// engine to dead-letter.
func Decode(line []byte, offset int64) engine.Record {
	l, err := parseLine(line)
	if err != nil {
		return engine.Record{Offset: offset, Value: bytes.Clone(line), Err: fmt.Sprintf("input line %d %v", offset+1, err)}
	}
	return l.Record(offset)
}

// Record returns the record the line stands for, at offset on partition
// 0. Kind is the topic when it names an input topic (the engine
// dead-letters the record otherwise). Key is nil for a null key. Value is
// nil for a null value (a tombstone); for a JSON string it is the
// string's contents, the raw record bytes, which need not be JSON (so that
// a dead letter's value replays as it was seen); otherwise it is the JSON
// as written, sharing the line's bytes.
func (l Line) Record(offset int64) engine.Record {
	rec := engine.Record{Topic: l.Topic, Offset: offset, Value: recordValue(l.Value)}
	if k, ok := engine.ParseKind(l.Topic); ok {
		rec.Kind = k
	}
	if l.Key != nil {
		rec.Key = []byte(*l.Key)
	}
	return rec
}

func recordValue(v json.RawMessage) []byte {
	v = bytes.TrimSpace(v)
	switch {
	case len(v) == 0 || string(v) == "null":
		return nil
	case v[0] == '"':
		var s string
		if json.Unmarshal(v, &s) == nil {
			// Never nil: an empty string is an empty value, not a
			// tombstone.
			return append([]byte{}, s...)
		}
	}
	return v
}

// parseLine parses an input line. Its errors are phrases that follow
// "input line N".
func parseLine(b []byte) (Line, error) {
	var raw struct {
		Topic json.RawMessage `json:"topic"`
		Key   json.RawMessage `json:"key"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		if _, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
			return Line{}, fmt.Errorf("is not a JSON object {topic, key, value}: it is %s", jsonKind(b))
		}
		return Line{}, fmt.Errorf("is not a JSON object {topic, key, value}: %w", err)
	}
	if string(bytes.TrimSpace(b)) == "null" {
		return Line{}, errors.New("is not a JSON object {topic, key, value}: it is null")
	}
	topic, ok := stringOrNull(raw.Topic)
	if !ok {
		return Line{}, fmt.Errorf(`has a "topic" that is %s, not a string`, jsonKind(raw.Topic))
	}
	key, ok := stringOrNull(raw.Key)
	if !ok {
		return Line{}, fmt.Errorf(`has a "key" that is %s, not a string or null`, jsonKind(raw.Key))
	}
	l := Line{Key: key}
	if topic != nil {
		l.Topic = *topic
	}
	if v := bytes.TrimSpace(raw.Value); len(v) > 0 && string(v) != "null" {
		l.Value = raw.Value
	}
	return l, nil
}

// stringOrNull decodes a field that may be absent, null or a string; ok is
// false for any other JSON value.
func stringOrNull(raw json.RawMessage) (s *string, ok bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, true
	}
	var v string
	if raw[0] != '"' || json.Unmarshal(raw, &v) != nil {
		return nil, false
	}
	return &v, true
}

// jsonKind names the kind of a JSON value for an error message.
func jsonKind(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return "empty"
	}
	switch b[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// UnmarshalJSON parses a line as Decode does: a JSON null key or value
// becomes nil, a missing or null topic the empty topic. A JSON null line
// leaves l unchanged, as encoding/json does for other types.
func (l *Line) UnmarshalJSON(b []byte) error {
	if string(bytes.TrimSpace(b)) == "null" {
		return nil
	}
	p, err := parseLine(b)
	if err != nil {
		return fmt.Errorf("file: the line %w", err)
	}
	*l = p
	return nil
}

// MarshalJSON renders the line as AppendJSON does.
func (l Line) MarshalJSON() ([]byte, error) { return l.AppendJSON(nil) }

// AppendJSON appends the line as {"topic":…,"key":…,"value":…}, on one
// line and without a newline: the value bytes as written (compacted when
// they span lines), null for a nil key or value. It returns
// ErrInvalidValue when Value is not valid JSON.
func (l Line) AppendJSON(b []byte) ([]byte, error) {
	if l.Value != nil && !json.Valid(l.Value) {
		return b, ErrInvalidValue
	}
	b = append(b, `{"topic":`...)
	b = appendString(b, l.Topic)
	b = append(b, `,"key":`...)
	if l.Key == nil {
		b = append(b, "null"...)
	} else {
		b = appendString(b, *l.Key)
	}
	b = append(b, `,"value":`...)
	switch {
	case l.Value == nil:
		b = append(b, "null"...)
	case bytes.ContainsAny(l.Value, "\r\n"):
		var c bytes.Buffer
		_ = json.Compact(&c, l.Value) // valid, checked above
		b = append(b, c.Bytes()...)
	default:
		b = append(b, l.Value...)
	}
	return append(b, '}'), nil
}

// appendString appends s as a JSON string, without escaping HTML
// characters.
func appendString(b []byte, s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}

// WriteLines writes the lines as NDJSON, one line each.
func WriteLines(w io.Writer, lines []Line) error {
	bw := bufio.NewWriter(w)
	var b []byte
	for i, l := range lines {
		var err error
		if b, err = l.AppendJSON(b[:0]); err != nil {
			return fmt.Errorf("line %d: %w", i+1, err)
		}
		if _, err := bw.Write(append(b, '\n')); err != nil {
			return fmt.Errorf("file: write: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("file: write: %w", err)
	}
	return nil
}
