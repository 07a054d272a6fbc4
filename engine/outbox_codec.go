package engine

import (
	"encoding/base64"
	"strconv"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes
// U+FFFD, as encoding/json does.
func appendJSONString(b []byte, s string) []byte { return appendJSONStr(b, s, false) }

// appendJSONStringHTML appends s exactly as encoding/json.Marshal does,
// which also escapes <, >, & and U+2028, U+2029.
func appendJSONStringHTML(b []byte, s string) []byte { return appendJSONStr(b, s, true) }

func appendJSONStr(b []byte, s string, html bool) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && (!html || (c != '<' && c != '>' && c != '&')) {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if html && (r == '\u2028' || r == '\u2029') {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// AppendEventJSON appends the JSON of a membership event: the bytes
// encoding/json.Marshal produces, without reflection (one call per output
// event).
func AppendEventJSON(b []byte, e *Event) []byte {
	b = append(b, `{"spot":`...)
	b = appendJSONStringHTML(b, e.Spot)
	b = append(b, `,"group":`...)
	b = appendJSONStringHTML(b, e.Group)
	b = append(b, `,"member":`...)
	b = appendJSONStringHTML(b, e.Member)
	b = append(b, `,"op":`...)
	b = appendJSONStringHTML(b, string(e.Op))
	b = append(b, `,"ts":`...)
	b = appendJSONStringHTML(b, e.TS)
	b = append(b, `,"reason":`...)
	b = appendJSONStringHTML(b, string(e.Reason))
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	return append(b, '}')
}

// AppendDeadLetterJSON appends the JSON of a dead letter: the bytes
// encoding/json.Marshal produces, without reflection.
func AppendDeadLetterJSON(b []byte, d *DeadLetter) []byte {
	b = append(b, `{"topic":`...)
	b = appendJSONStringHTML(b, d.Topic)
	b = append(b, `,"partition":`...)
	b = strconv.AppendInt(b, int64(d.Partition), 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, d.Offset, 10)
	b = append(b, `,"key":`...)
	b = appendJSONStringHTML(b, d.Key)
	b = append(b, `,"value":`...)
	b = appendJSONStringHTML(b, d.Value)
	b = append(b, `,"reason":`...)
	b = appendJSONStringHTML(b, d.Reason)
	b = append(b, `,"code":`...)
	b = appendJSONStringHTML(b, string(d.Code))
	if d.Size != 0 {
		b = append(b, `,"size":`...)
		b = strconv.AppendInt(b, d.Size, 10)
	}
	if d.SHA256 != "" {
		b = append(b, `,"sha256":`...)
		b = appendJSONStringHTML(b, d.SHA256)
	}
	return append(b, '}')
}

// appendOutboxEntry appends o as encoding/json.Marshal does (the outbox is
// read back with json.Unmarshal); it runs once per partition per batch
// over every event and changelog entry of the batch.
func appendOutboxEntry(b []byte, o *OutboxEntry) []byte {
	b = append(b, `{"partition":`...)
	b = strconv.AppendInt(b, int64(o.Partition), 10)
	b = append(b, `,"id":`...)
	b = strconv.AppendUint(b, o.ID, 10)
	if len(o.Events) > 0 {
		b = append(b, `,"events":[`...)
		for i := range o.Events {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendEventJSON(b, &o.Events[i])
		}
		b = append(b, ']')
	}
	if len(o.Access) > 0 {
		b = append(b, `,"access":[`...)
		for i := range o.Access {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendAccessEventJSON(b, &o.Access[i])
		}
		b = append(b, ']')
	}
	if len(o.DeadLetters) > 0 {
		b = append(b, `,"dead_letters":[`...)
		for i := range o.DeadLetters {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendDeadLetterJSON(b, &o.DeadLetters[i])
		}
		b = append(b, ']')
	}
	if len(o.Changelog) > 0 {
		b = append(b, `,"changelog":[`...)
		for i := range o.Changelog {
			if i > 0 {
				b = append(b, ',')
			}
			c := &o.Changelog[i]
			b = append(b, `{"k":`...)
			b = appendBase64(b, c.Key)
			if len(c.Value) > 0 {
				b = append(b, `,"v":`...)
				b = appendBase64(b, c.Value)
			}
			if c.Delete {
				b = append(b, `,"d":true`...)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if len(o.DefinitionTombstones) > 0 {
		b = append(b, `,"definition_tombstones":[`...)
		for i, k := range o.DefinitionTombstones {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONStringHTML(b, k)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendBase64 appends a []byte the way encoding/json encodes one: a
// string of standard base64 (null for a nil slice).
func appendBase64(b []byte, v []byte) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, v)
	return append(b, '"')
}

// outboxEntrySize estimates the encoded size of o (exact unless strings
// need escaping), so that the encoder allocates its buffer once.
func outboxEntrySize(o *OutboxEntry) int {
	n := 64
	for i := range o.Events {
		e := &o.Events[i]
		n += 80 + len(e.Spot) + len(e.Group) + len(e.Member) + len(e.TS) + len(e.Op) + len(e.Reason)
	}
	for i := range o.Access {
		a := &o.Access[i]
		n += 100 + len(a.Spot) + len(a.Resource) + len(a.Member) + len(a.TS) + len(a.Op)
		for _, g := range a.Groups {
			n += 3 + len(g)
		}
	}
	for i := range o.DeadLetters {
		d := &o.DeadLetters[i]
		n += 200 + len(d.Topic) + len(d.Key) + len(d.Value) + len(d.Reason) + len(d.Code)
	}
	for i := range o.Changelog {
		n += 24 + base64.StdEncoding.EncodedLen(len(o.Changelog[i].Key)) + base64.StdEncoding.EncodedLen(len(o.Changelog[i].Value))
	}
	for _, k := range o.DefinitionTombstones {
		n += 4 + len(k)
	}
	return n
}

// OutboxEntry is the durable copy of a batch's output for one partition:
// membership and access events, dead letters, the partition's state changes (its
// changelog, for restoring the partition elsewhere) and keys of
// definitions the engine deleted itself (blacklist entries of an erased
// member) that a runtime should tombstone on the definitions topic.
type OutboxEntry struct {
	Partition            int32            `json:"partition"`
	ID                   uint64           `json:"id"`
	Events               []Event          `json:"events,omitempty"`
	Access               []AccessEvent    `json:"access,omitempty"`
	DeadLetters          []DeadLetter     `json:"dead_letters,omitempty"`
	Changelog            []ChangelogEntry `json:"changelog,omitempty"`
	DefinitionTombstones []string         `json:"definition_tombstones,omitempty"`
}
