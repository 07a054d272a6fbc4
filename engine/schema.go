package engine

import (
	"encoding/json"

	"github.com/smartgroups/smartgroups/engine/rule"
)

// GroupType is static or smart.
type GroupType string

// Group types.
const (
	GroupStatic GroupType = "static"
	GroupSmart  GroupType = "smart"
)

// GroupDef is a group definition (SPEC §2.4, §4.1).
type GroupDef struct {
	Kind        string          `json:"kind"`
	Spot        string          `json:"spot"`
	ID          string          `json:"id"`
	Type        GroupType       `json:"type"`
	Name        string          `json:"name"`
	Icon        string          `json:"icon,omitempty"`
	Description string          `json:"description,omitempty"`
	Rule        json.RawMessage `json:"rule,omitempty"`
	TS          json.RawMessage `json:"ts,omitempty"`

	compiled *rule.Rule
}

// Compiled returns the compiled rule of a smart group (nil for static).
func (g *GroupDef) Compiled() *rule.Rule { return g.compiled }

// Blacklist is a blacklist entry (SPEC §2.4).
type Blacklist struct {
	Kind   string `json:"kind"`
	Spot   string `json:"spot"`
	Group  string `json:"group"`
	Member string `json:"member"`
}
