package scenario

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/smartgroups/smartgroups/engine"
)

// Line is one input record in the `process` input format (SPEC §5). Key nil
// marshals as a JSON null key; Value nil marshals as a JSON null value (a
// tombstone).
type Line struct {
	Topic string
	Key   *string
	Value json.RawMessage
}

// MarshalJSON renders {"topic":…,"key":…,"value":…} with the value bytes
// verbatim.
func (l Line) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	if err := l.write(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func (l Line) write(b *bytes.Buffer) error {
	if l.Value != nil && !json.Valid(l.Value) {
		return fmt.Errorf("scenario: value of a %s line is not valid JSON", l.Topic)
	}
	b.WriteString(`{"topic":`)
	writeString(b, l.Topic)
	b.WriteString(`,"key":`)
	if l.Key == nil {
		b.WriteString("null")
	} else {
		writeString(b, *l.Key)
	}
	b.WriteString(`,"value":`)
	switch {
	case l.Value == nil:
		b.WriteString("null")
	case bytes.ContainsAny(l.Value, "\r\n"):
		// One record per line: a value spanning lines is compacted.
		_ = json.Compact(b, l.Value) // valid, checked above
	default:
		b.Write(l.Value)
	}
	b.WriteByte('}')
	return nil
}

func writeString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)       // a string always encodes
	b.Truncate(b.Len() - 1) // Encode appends a newline
}

// UnmarshalJSON parses a line; a JSON null key or value becomes nil.
func (l *Line) UnmarshalJSON(data []byte) error {
	var raw struct {
		Topic *string         `json:"topic"`
		Key   json.RawMessage `json:"key"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	if raw.Topic == nil {
		return errors.New("scenario: line without a topic")
	}
	*l = Line{Topic: *raw.Topic}
	if raw.Key != nil && string(raw.Key) != "null" {
		var k string
		if err := json.Unmarshal(raw.Key, &k); err != nil {
			return fmt.Errorf("scenario: key: %w", err)
		}
		l.Key = &k
	}
	if raw.Value != nil && string(raw.Value) != "null" {
		l.Value = append(json.RawMessage(nil), raw.Value...)
	}
	return nil
}

// Record returns the line as an engine record at offset (partition 0). Kind
// and Topic are the line's logical topic; Key is nil for a null key; Value
// is nil for a null value.
func (l Line) Record(offset int64) engine.Record {
	rec := engine.Record{Kind: engine.Kind(l.Topic), Topic: l.Topic, Offset: offset}
	if l.Key != nil {
		rec.Key = []byte(*l.Key)
	}
	if l.Value != nil {
		rec.Value = []byte(l.Value)
	}
	return rec
}

// WriteNDJSON writes the lines, one JSON object per line.
func WriteNDJSON(w io.Writer, lines []Line) error {
	bw := bufio.NewWriter(w)
	var b bytes.Buffer
	for i, l := range lines {
		b.Reset()
		if err := l.write(&b); err != nil {
			return fmt.Errorf("line %d: %w", i+1, err)
		}
		b.WriteByte('\n')
		if _, err := bw.Write(b.Bytes()); err != nil {
			return err
		}
	}
	return bw.Flush()
}
