package engine

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"

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
		for i, k := range slices.Sorted(maps.Keys(st.Seqs)) {
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
		for i, k := range slices.Sorted(maps.Keys(p.UTM)) {
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
	for i, k := range slices.Sorted(maps.Keys(m)) {
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
