package engine

import (
	"encoding/json"
	"fmt"
	"sort"
)

// Profile is a member's profile (SPEC §2.1). Pointer fields are nil when
// unset; an empty set counts as unset.
type Profile struct {
	FirstName      *string           `json:"first_name,omitempty"`
	LastName       *string           `json:"last_name,omitempty"`
	Email          *string           `json:"email,omitempty"`
	Title          *string           `json:"title,omitempty"`
	Status         *string           `json:"status,omitempty"`
	Role           *string           `json:"role,omitempty"`
	Language       *string           `json:"language,omitempty"`
	Tags           []string          `json:"tags,omitempty"`
	InvitedAt      *Millis           `json:"invited_at,omitempty"`
	RegisteredAt   *Millis           `json:"registered_at,omitempty"`
	LastActivityAt *Millis           `json:"last_activity_at,omitempty"`
	UTM            map[string]string `json:"utm,omitempty"`
	StaticGroups   []string          `json:"static_groups,omitempty"`
}

func (p *Profile) str(name string) *string {
	switch name {
	case "first_name":
		return p.FirstName
	case "last_name":
		return p.LastName
	case "email":
		return p.Email
	case "title":
		return p.Title
	case "status":
		return p.Status
	case "role":
		return p.Role
	case "language":
		return p.Language
	}
	return nil
}

func (p *Profile) strField(name string) **string {
	switch name {
	case "first_name":
		return &p.FirstName
	case "last_name":
		return &p.LastName
	case "email":
		return &p.Email
	case "title":
		return &p.Title
	case "status":
		return &p.Status
	case "role":
		return &p.Role
	case "language":
		return &p.Language
	}
	return nil
}

func (p *Profile) dateField(name string) **Millis {
	switch name {
	case "invited_at":
		return &p.InvitedAt
	case "registered_at":
		return &p.RegisteredAt
	case "last_activity_at":
		return &p.LastActivityAt
	}
	return nil
}

// StatusValue returns the status or "".
func (p *Profile) StatusValue() string {
	if p.Status == nil {
		return ""
	}
	return *p.Status
}

// ProfilePatch is a validated JSON Merge Patch of a profile: field name to
// raw value, JSON null clearing the field.
type ProfilePatch map[string]json.RawMessage

// Activity is one validated activity record.
type Activity struct {
	ID       string `json:"id,omitempty"`
	Type     string `json:"type"`
	Resource string `json:"resource,omitempty"`
	Title    string `json:"title,omitempty"`
	TS       Millis `json:"ts"`
}

// MemberChange is a decoded, validated member record.
type MemberChange struct {
	Kind     Kind
	Spot     string
	Member   string
	TS       Millis
	Erase    bool
	Profile  ProfilePatch
	Activity *Activity
	Custom   map[string]json.RawMessage // id -> value, null clears
	Form     map[string]json.RawMessage
	// Unknown counts fields that were ignored.
	Unknown int
}

// validateProfilePatch checks every known field's type; unknown fields are
// dropped and counted.
func validateProfilePatch(raw json.RawMessage, lim Limits) (ProfilePatch, int, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, 0, fmt.Errorf("profile must be a JSON object")
	}
	unknown := 0
	for _, k := range sortedKeys(m) {
		v := m[k]
		if isNull(v) {
			if _, known := profileFieldTypes[k]; !known && k != "utm" {
				delete(m, k)
				unknown++
			}
			continue
		}
		switch k {
		case "first_name", "last_name", "email", "title", "role", "language":
			if _, ok := jsonString(v); !ok {
				return nil, 0, fmt.Errorf("profile.%s: expected a string", k)
			}
		case "status":
			s, ok := jsonString(v)
			if !ok || !validStatus(s) {
				return nil, 0, fmt.Errorf("profile.status: %s is not one of accepted, invited, pending, deactivated, unsubscribed, declined, rejected", string(v))
			}
		case "tags":
			ss, ok := jsonStrings(v)
			if !ok {
				return nil, 0, fmt.Errorf("profile.tags: expected an array of strings")
			}
			if len(ss) > lim.MaxTags {
				return nil, 0, fmt.Errorf("profile.tags: %d tags, more than the limit of %d per member", len(ss), lim.MaxTags)
			}
		case "static_groups":
			ss, ok := jsonStrings(v)
			if !ok {
				return nil, 0, fmt.Errorf("profile.static_groups: expected an array of group ids")
			}
			for _, s := range ss {
				if err := checkID("profile.static_groups entry", s); err != nil {
					return nil, 0, err
				}
			}
		case "invited_at", "registered_at", "last_activity_at":
			if _, err := parseTimestamp(v); err != nil {
				return nil, 0, fmt.Errorf("profile.%s: %w", k, err)
			}
		case "utm":
			var u map[string]json.RawMessage
			if err := json.Unmarshal(v, &u); err != nil || u == nil {
				return nil, 0, fmt.Errorf("profile.utm: expected an object")
			}
			for _, uk := range sortedKeys(u) {
				uv := u[uk]
				if !utmKeys[uk] {
					delete(u, uk)
					unknown++
					continue
				}
				if isNull(uv) {
					continue
				}
				if _, ok := jsonString(uv); !ok {
					return nil, 0, fmt.Errorf("profile.utm.%s: expected a string", uk)
				}
			}
			b, _ := json.Marshal(u)
			m[k] = b
		default:
			delete(m, k)
			unknown++
		}
	}
	return ProfilePatch(m), unknown, nil
}

// Apply merges the patch into p (RFC 7396) and returns the names of the
// profile fields whose value changed ("utm" for any utm key).
func (pp ProfilePatch) Apply(p *Profile) []string {
	var changed []string
	for k, v := range pp {
		null := isNull(v)
		switch k {
		case "first_name", "last_name", "email", "title", "status", "role", "language":
			f := p.strField(k)
			old := *f
			if null {
				*f = nil
			} else {
				s, _ := jsonString(v)
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
				nv, _ = jsonStrings(v)
				nv = normSet(nv)
			}
			if !eqStrings(*f, nv) {
				changed = append(changed, k)
			}
			*f = nv
		case "invited_at", "registered_at", "last_activity_at":
			f := p.dateField(k)
			old := *f
			if null {
				*f = nil
			} else {
				t, _ := parseTimestamp(v)
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
					if isNull(uv) {
						delete(p.UTM, uk)
						continue
					}
					s, _ := jsonString(uv)
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
	sort.Strings(changed)
	return changed
}

// normSet sorts and de-duplicates a set; an empty set becomes nil (unset).
func normSet(ss []string) []string {
	if len(ss) == 0 {
		return nil
	}
	out := append([]string(nil), ss...)
	sort.Strings(out)
	return dedupe(out)
}

func eqStrPtr(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func eqMillisPtr(a, b *Millis) bool {
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
