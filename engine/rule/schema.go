package rule

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/smartgroups/smartgroups/engine/internal/jsonscan"
)

// ValueType is the type of a custom property or form question.
type ValueType string

// Property and question types (SPEC §2.3).
const (
	TypeText         ValueType = "text"
	TypeNumber       ValueType = "number"
	TypeDate         ValueType = "date"
	TypeBoolean      ValueType = "boolean"
	TypeSingleSelect ValueType = "single_select"
	TypeMultiSelect  ValueType = "multi_select"
)

// Valid reports whether t is one of the types of SPEC §2.3.
func (t ValueType) Valid() bool {
	switch t {
	case TypeText, TypeNumber, TypeDate, TypeBoolean, TypeSingleSelect, TypeMultiSelect:
		return true
	}
	return false
}

// Select reports whether t is single_select or multi_select.
func (t ValueType) Select() bool { return t == TypeSingleSelect || t == TypeMultiSelect }

// Option is one choice of a select property or question.
type Option struct {
	ID    string `json:"id"`
	Label string `json:"label"`
}

// Schema declares a custom property or a form question (SPEC §2.3, §4.1).
type Schema struct {
	Kind    string          `json:"kind"` // "property" or "question"
	Spot    string          `json:"spot"`
	ID      string          `json:"id"`
	Label   string          `json:"label"`
	Type    ValueType       `json:"type"`
	Options []Option        `json:"options,omitempty"`
	TS      json.RawMessage `json:"ts,omitempty"`

	optionSet map[string]struct{}
}

// HasOption reports whether the schema declares option id. The option
// index is built when the schema is validated or loaded, never lazily, so
// concurrent readers are safe.
func (s *Schema) HasOption(id string) bool {
	_, ok := s.optionSet[id]
	return ok
}

// IndexOptions builds the option index HasOption reads. Validate builds
// it; a schema loaded without validation needs this call.
func (s *Schema) IndexOptions() {
	s.optionSet = make(map[string]struct{}, len(s.Options))
	for _, o := range s.Options {
		s.optionSet[o.ID] = struct{}{}
	}
}

// Fingerprint identifies what of the schema affects evaluation: the type and
// the declared option ids (labels do not matter: rules use ids).
func (s *Schema) Fingerprint() string {
	ids := make([]string, 0, len(s.Options))
	for _, o := range s.Options {
		ids = append(ids, o.ID)
	}
	slices.Sort(ids)
	b, _ := json.Marshal(struct {
		T ValueType
		O []string
	}{s.Type, ids})
	return string(b)
}

// Validate checks a declared schema (ids, type, options) and builds its
// option index.
func (s *Schema) Validate() error {
	if err := CheckKeyID("spot", s.Spot); err != nil {
		return err
	}
	if err := CheckID(s.Kind+" id", s.ID); err != nil {
		return err
	}
	if len(s.TS) > 0 && !jsonscan.IsNull(s.TS) {
		if _, err := ParseTimestamp(s.TS); err != nil {
			return fmt.Errorf("%s %q: ts: %w", s.Kind, s.ID, err)
		}
	}
	if !s.Type.Valid() {
		return fmt.Errorf("%s %q: type %q is not one of text, number, date, boolean, single_select, multi_select", s.Kind, s.ID, s.Type)
	}
	if s.Type.Select() {
		if len(s.Options) == 0 {
			return fmt.Errorf("%s %q: a %s needs a non-empty options list", s.Kind, s.ID, s.Type)
		}
	} else if len(s.Options) > 0 {
		return fmt.Errorf("%s %q: options are only allowed for single_select and multi_select", s.Kind, s.ID)
	}
	seen := make(map[string]struct{}, len(s.Options))
	for _, o := range s.Options {
		if err := CheckID(s.Kind+" "+s.ID+" option id", o.ID); err != nil {
			return err
		}
		if _, dup := seen[o.ID]; dup {
			return fmt.Errorf("%s %q: option id %q is declared twice", s.Kind, s.ID, o.ID)
		}
		seen[o.ID] = struct{}{}
	}
	s.IndexOptions()
	return nil
}

// Fits reports whether a value being written fits the declared type
// exactly (select values must name declared options).
func (s *Schema) Fits(raw json.RawMessage) error {
	switch s.Type {
	case TypeText:
		if _, ok := jsonscan.DecodeString(raw); !ok {
			return fmt.Errorf("expected a string for %s type text", s.Kind)
		}
	case TypeNumber:
		if _, ok := jsonscan.DecodeNumber(raw); !ok {
			return fmt.Errorf("expected a number for %s type number", s.Kind)
		}
	case TypeDate:
		if _, err := ParseTimestamp(raw); err != nil {
			return fmt.Errorf("expected a date for %s type date: %w", s.Kind, err)
		}
	case TypeBoolean:
		if _, ok := jsonscan.DecodeBool(raw); !ok {
			return fmt.Errorf("expected true or false for %s type boolean", s.Kind)
		}
	case TypeSingleSelect:
		v, ok := jsonscan.DecodeString(raw)
		if !ok {
			return fmt.Errorf("expected an option id string for %s type single_select", s.Kind)
		}
		if !s.HasOption(v) {
			return fmt.Errorf("option %q is not declared", v)
		}
	case TypeMultiSelect:
		vs, ok := jsonscan.DecodeStrings(raw)
		if !ok {
			return fmt.Errorf("expected an array of option id strings for %s type multi_select", s.Kind)
		}
		for _, v := range vs {
			if !s.HasOption(v) {
				return fmt.Errorf("option %q is not declared", v)
			}
		}
	}
	return nil
}
