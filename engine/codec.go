package engine

import (
	"encoding/base64"
	"encoding/json"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/smartgroups/smartgroups/engine/rule"
)

// appendMemberState encodes a member state as the same JSON that
// encoding/json produces for MemberState (DecodeMemberState reads either),
// without reflection: it runs once per changed member per batch.
func appendMemberState(b []byte, st *MemberState) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, st.ID)
	b = append(b, `,"p":`...)
	b = appendProfile(b, &st.Profile)
	b = appendRawMap(b, "c", st.Custom)
	b = appendRawMap(b, "f", st.Form)
	if st.LastAct != nil {
		b = append(b, `,"la":`...)
		b = strconv.AppendInt(b, *st.LastAct, 10)
	}
	if st.ActN != 0 {
		b = append(b, `,"an":`...)
		b = strconv.AppendUint(b, uint64(st.ActN), 10)
	}
	if st.ActTypes != 0 {
		b = append(b, `,"at":`...)
		b = strconv.AppendUint(b, uint64(st.ActTypes), 10)
	}
	if len(st.Groups) > 0 {
		b = append(b, `,"g":`...)
		b = appendStrings(b, st.Groups)
	}
	if st.Timer != nil {
		b = append(b, `,"t":`...)
		b = strconv.AppendInt(b, *st.Timer, 10)
	}
	if len(st.Seqs) > 0 {
		b = append(b, `,"q":{`...)
		for i, k := range sortedKeys(st.Seqs) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = strconv.AppendUint(b, st.Seqs[k], 10)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

func appendProfile(b []byte, p *rule.Profile) []byte {
	b = append(b, '{')
	first := true
	key := func(k string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, k...)
		b = append(b, '"', ':')
	}
	for _, f := range []struct {
		k string
		v *string
	}{{"first_name", p.FirstName}, {"last_name", p.LastName}, {"email", p.Email}, {"title", p.Title},
		{"status", p.Status}, {"role", p.Role}, {"language", p.Language}} {
		if f.v != nil {
			key(f.k)
			b = appendJSONString(b, *f.v)
		}
	}
	if len(p.Tags) > 0 {
		key("tags")
		b = appendStrings(b, p.Tags)
	}
	for _, f := range []struct {
		k string
		v *rule.Millis
	}{{"invited_at", p.InvitedAt}, {"registered_at", p.RegisteredAt}, {"last_activity_at", p.LastActivityAt}} {
		if f.v != nil {
			key(f.k)
			b = strconv.AppendInt(b, *f.v, 10)
		}
	}
	if len(p.UTM) > 0 {
		key("utm")
		b = append(b, '{')
		for i, k := range sortedKeys(p.UTM) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, p.UTM[k])
		}
		b = append(b, '}')
	}
	if len(p.StaticGroups) > 0 {
		key("static_groups")
		b = appendStrings(b, p.StaticGroups)
	}
	return append(b, '}')
}

func appendRawMap(b []byte, name string, m map[string]json.RawMessage) []byte {
	if len(m) == 0 {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, `":{`...)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		if v := m[k]; len(v) > 0 {
			b = append(b, v...) // already compact, valid JSON
		} else {
			b = append(b, "null"...)
		}
	}
	return append(b, '}')
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

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
	b = appendJSONStringHTML(b, d.Code)
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
	for i := range o.DeadLetters {
		d := &o.DeadLetters[i]
		n += 120 + len(d.Topic) + len(d.Key) + len(d.Value) + len(d.Reason) + len(d.Code)
	}
	for i := range o.Changelog {
		n += 24 + base64.StdEncoding.EncodedLen(len(o.Changelog[i].Key)) + base64.StdEncoding.EncodedLen(len(o.Changelog[i].Value))
	}
	for _, k := range o.DefinitionTombstones {
		n += 4 + len(k)
	}
	return n
}
