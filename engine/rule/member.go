package rule

import (
	"encoding/json"
)

// MemberView is what rule evaluation reads of one member.
type MemberView interface {
	Profile() *Profile
	Custom(id string) (json.RawMessage, bool)
	Form(id string) (json.RawMessage, bool)
	// LastActivity is the newest activity ts, if any activity is known.
	LastActivity() (Millis, bool)
	// Activities returns the member's activities of one type, sorted by
	// ts.
	Activities(typ string) ([]Activity, error)
	// InSmartGroup reports current membership in a smart group.
	InSmartGroup(id string) bool
}

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

// str returns the string field named name (nil when unset or for another
// name).
func (p *Profile) str(name string) *string {
	if f := p.StringField(name); f != nil {
		return *f
	}
	return nil
}

// StringField returns the address of the string field named name (nil
// for another name), for code that sets profile fields by name.
func (p *Profile) StringField(name string) **string {
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

// DateField returns the address of the instant field named name (nil
// for another name), for code that sets profile fields by name.
func (p *Profile) DateField(name string) **Millis {
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

// Activity is one validated activity record.
type Activity struct {
	ID       string `json:"id,omitempty"`
	Type     string `json:"type"`
	Resource string `json:"resource,omitempty"`
	Title    string `json:"title,omitempty"`
	TS       Millis `json:"ts"`
}
