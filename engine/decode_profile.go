package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/smartgroups/smartgroups/engine/internal/jsonscan"
	"github.com/smartgroups/smartgroups/engine/rule"
)

// ProfilePatch is a validated JSON Merge Patch of a profile: field name to
// raw value, JSON null clearing the field.
type ProfilePatch map[string]json.RawMessage

// profileFields are the fields a profile patch may hold, sorted: checking
// them in this order reports the fault of the least key, whatever the order
// of the patch's keys.
var profileFields = [...]string{"email", "first_name", "invited_at", "language", "last_activity_at",
	"last_name", "registered_at", "role", "static_groups", "status", "tags", "title", "utm"}

// profileField returns the index in profileFields of the field named key.
func profileField(key []byte) int {
	switch string(key) {
	case "email":
		return 0
	case "first_name":
		return 1
	case "invited_at":
		return 2
	case "language":
		return 3
	case "last_activity_at":
		return 4
	case "last_name":
		return 5
	case "registered_at":
		return 6
	case "role":
		return 7
	case "static_groups":
		return 8
	case "status":
		return 9
	case "tags":
		return 10
	case "title":
		return 11
	case "utm":
		return 12
	}
	return -1
}

// utmFields are the keys of utm, sorted.
var utmFields = [...]string{"campaign", "content", "medium", "source", "term"}

func utmField(key []byte) int {
	switch string(key) {
	case "campaign":
		return 0
	case "content":
		return 1
	case "medium":
		return 2
	case "source":
		return 3
	case "term":
		return 4
	}
	return -1
}

// validateProfilePatch checks every known field's type; unknown fields are
// dropped and counted. Kept values are the record's bytes, except utm,
// which holds its known keys only, encoded as json.Marshal encodes a
// map[string]json.RawMessage.
func validateProfilePatch(raw jsonscan.Value, lim Limits) (ProfilePatch, int, error) {
	if raw.Kind != jsonscan.Obj {
		return nil, 0, errors.New("profile must be a JSON object")
	}
	var vals [len(profileFields)]jsonscan.Value
	var others keySet
	unknown := 0
	it := raw.Members()
	for {
		key, v, ok := it.NextKey()
		if !ok {
			break
		}
		if f := profileField(key); f >= 0 {
			vals[f] = v
		} else if others.add(key) {
			unknown++
		}
	}
	n, size := 0, 0
	var utm []byte
	for f, v := range vals {
		if !v.Present() {
			continue
		}
		n++
		k := profileFields[f]
		if v.Kind == jsonscan.Null {
			size += len(v.Bytes)
			continue
		}
		switch k {
		case "first_name", "last_name", "email", "title", "role", "language":
			if v.Kind != jsonscan.Str {
				return nil, 0, fmt.Errorf("profile.%s: expected a string", k)
			}
		case "status":
			if v.Kind != jsonscan.Str || !validStatusBytes(stringBytes(v)) {
				return nil, 0, fmt.Errorf("profile.status: %s is not one of accepted, invited, pending, deactivated, unsubscribed, declined, rejected", string(v.Bytes))
			}
		case "tags":
			tags, ok := countStrings(v)
			if !ok {
				return nil, 0, fmt.Errorf("profile.tags: expected an array of strings")
			}
			if tags > lim.MaxTags {
				return nil, 0, fmt.Errorf("profile.tags: %d tags, more than the limit of %d per member (max tags)", tags, lim.MaxTags)
			}
		case "static_groups":
			if _, ok := countStrings(v); !ok {
				return nil, 0, fmt.Errorf("profile.static_groups: expected an array of group ids")
			}
			el := v.Elements()
			for {
				s, ok := el.Next()
				if !ok {
					break
				}
				if err := checkIDBytes("profile.static_groups entry", stringBytes(s), false); err != nil {
					return nil, 0, err
				}
			}
		case "invited_at", "registered_at", "last_activity_at":
			if _, err := rule.ParseTimestamp(v.Bytes); err != nil {
				return nil, 0, fmt.Errorf("profile.%s: %w", k, err)
			}
		case "utm":
			u, uUnknown, err := encodeUTM(v)
			if err != nil {
				return nil, 0, err
			}
			utm, unknown = u, unknown+uUnknown
			size += len(u)
			continue
		}
		size += len(v.Bytes)
	}
	// One buffer holds the kept values.
	buf := make([]byte, 0, size)
	pp := make(ProfilePatch, n)
	for f, v := range vals {
		if !v.Present() {
			continue
		}
		b := v.Bytes
		if profileFields[f] == "utm" && v.Kind != jsonscan.Null {
			b = utm
		}
		start := len(buf)
		buf = append(buf, b...)
		pp[profileFields[f]] = buf[start:len(buf):len(buf)]
	}
	return pp, unknown, nil
}

// encodeUTM checks a profile's utm object and encodes its known keys;
// unknown keys are dropped and counted.
func encodeUTM(v jsonscan.Value) ([]byte, int, error) {
	if v.Kind != jsonscan.Obj {
		return nil, 0, fmt.Errorf("profile.utm: expected an object")
	}
	var vals [len(utmFields)]jsonscan.Value
	var others keySet
	unknown := 0
	it := v.Members()
	for {
		key, uv, ok := it.NextKey()
		if !ok {
			break
		}
		if f := utmField(key); f >= 0 {
			vals[f] = uv
		} else if others.add(key) {
			unknown++
		}
	}
	size := 2
	for f, uv := range vals {
		if !uv.Present() {
			continue
		}
		if uv.Kind != jsonscan.Null && uv.Kind != jsonscan.Str {
			return nil, 0, fmt.Errorf("profile.utm.%s: expected a string", utmFields[f])
		}
		size += len(utmFields[f]) + 4 + len(uv.Bytes)
	}
	out := make([]byte, 0, size)
	out = append(out, '{')
	for f, uv := range vals {
		if !uv.Present() {
			continue
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, '"')
		out = append(out, utmFields[f]...)
		out = append(out, '"', ':')
		out = jsonscan.AppendHTMLEscaped(out, uv.Bytes)
	}
	return append(out, '}'), unknown, nil
}

// countStrings counts the elements of v when it is an array of strings.
func countStrings(v jsonscan.Value) (int, bool) {
	if v.Kind != jsonscan.Arr {
		return 0, false
	}
	n := 0
	el := v.Elements()
	for {
		s, ok := el.Next()
		if !ok {
			return n, true
		}
		if s.Kind != jsonscan.Str {
			return 0, false
		}
		n++
	}
}

func validStatusBytes(s []byte) bool {
	for _, x := range rule.Statuses {
		if string(s) == x {
			return true
		}
	}
	return false
}

// Apply merges the patch into p (RFC 7396) and returns the names of the
// profile fields whose value changed ("utm" for any utm key).
func (pp ProfilePatch) Apply(p *rule.Profile) []string {
	var changed []string
	for k, v := range pp {
		null := jsonscan.IsNull(v)
		switch k {
		case "first_name", "last_name", "email", "title", "status", "role", "language":
			f := p.StringField(k)
			old := *f
			if null {
				*f = nil
			} else {
				s, _ := jsonscan.DecodeString(v)
				*f = &s
			}
			if !eqStrPtr(old, *f) {
				changed = append(changed, k)
			}
		case "tags", "static_groups":
			f := &p.Tags
			if k == "static_groups" {
				f = &p.StaticGroups
			}
			var nv []string
			if !null {
				nv, _ = jsonscan.DecodeStrings(v)
				nv = normSet(nv)
			}
			if !eqStrings(*f, nv) {
				changed = append(changed, k)
			}
			*f = nv
		case "invited_at", "registered_at", "last_activity_at":
			f := p.DateField(k)
			old := *f
			if null {
				*f = nil
			} else {
				t, _ := rule.ParseTimestamp(v)
				*f = &t
			}
			if !eqMillisPtr(old, *f) {
				changed = append(changed, k)
			}
		case "utm":
			var u map[string]json.RawMessage
			if !null {
				_ = json.Unmarshal(v, &u)
			}
			before := fmt.Sprint(p.UTM)
			if null {
				p.UTM = nil
			} else {
				for uk, uv := range u {
					if jsonscan.IsNull(uv) {
						delete(p.UTM, uk)
						continue
					}
					s, _ := jsonscan.DecodeString(uv)
					if p.UTM == nil {
						p.UTM = map[string]string{}
					}
					p.UTM[uk] = s
				}
				if len(p.UTM) == 0 {
					p.UTM = nil
				}
			}
			if fmt.Sprint(p.UTM) != before {
				changed = append(changed, "utm")
			}
		}
	}
	slices.Sort(changed)
	return changed
}

// normSet sorts and de-duplicates a set; an empty set becomes nil (unset).
func normSet(ss []string) []string {
	if len(ss) == 0 {
		return nil
	}
	out := append([]string(nil), ss...)
	slices.Sort(out)
	return slices.Compact(out)
}

func eqStrPtr(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func eqMillisPtr(a, b *rule.Millis) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func eqStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
