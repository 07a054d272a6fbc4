package engine

// Posting lists (Prometheus tsdb style): roaring bitmaps of member
// ordinals, one per term, per spot and partition. This file holds the
// vocabulary of terms, the terms of a member, a transaction's view of the
// lists and the planner that narrows a rule to its candidate members.

import (
	"encoding/json"
	"slices"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/smartgroups/smartgroups/engine/internal/jsonscan"
	"github.com/smartgroups/smartgroups/engine/rule"
	"github.com/smartgroups/smartgroups/state"
)

// The posting-list vocabulary: the term of each indexed fact about a
// member, the key of its posting list within a spot and partition. Stored
// state is keyed by these strings, so they must never change.

// termAll is the posting list of every member.
const termAll = "*"

// termStatus is the term of members with a status.
func termStatus(status string) string { return "s:" + status }

// termRole is the term of members with a role (compared folded).
func termRole(role string) string { return "r:" + rule.Fold(role) }

// termLanguage is the term of members with a language (compared folded).
func termLanguage(lang string) string { return "l:" + rule.Fold(lang) }

// termTag is the term of members with a tag (compared folded).
func termTag(tag string) string { return "t:" + rule.Fold(tag) }

// termStaticGroup is the term of members listing id in static_groups.
func termStaticGroup(id string) string { return "sg:" + id }

// termCustom is the term of members whose custom property id holds value
// (a string, or an element of an array of strings).
func termCustom(id, value string) string { return "c:" + id + "=" + value }

// termForm is the term of members whose answer to question id holds value.
func termForm(id, value string) string { return "f:" + id + "=" + value }

// termActivity is the term of members with an activity of a type.
func termActivity(typ string) string { return "a:" + typ }

// termActivityResource is the term of members with an activity of a type
// on a resource.
func termActivityResource(typ, resource string) string { return "a:" + typ + ":" + resource }

// termSmartGroup is the term of the members of a smart group.
func termSmartGroup(id string) string { return "g:" + id }

// termGroup is the term of a group's members: the membership set of a
// smart group, the members listing a static one.
func termGroup(id string, t GroupType) string {
	if t == GroupStatic {
		return termStaticGroup(id)
	}
	return termSmartGroup(id)
}

// eligibleTerms are the terms of the statuses that allow smart-group
// membership.
var eligibleTerms = []string{termStatus("accepted"), termStatus("invited"), termStatus("pending")}

// terms returns the posting-list terms of a member's profile and values
// (activity terms are maintained as activities arrive).
func (m *member) terms() []string {
	p := &m.st.Profile
	var out []string
	if p.Status != nil {
		out = append(out, termStatus(*p.Status))
	}
	if p.Role != nil {
		out = append(out, termRole(*p.Role))
	}
	if p.Language != nil {
		out = append(out, termLanguage(*p.Language))
	}
	for _, tag := range p.Tags {
		out = append(out, termTag(tag))
	}
	for _, g := range p.StaticGroups {
		out = append(out, termStaticGroup(g))
	}
	out = appendValueTerms(out, termCustom, m.st.Custom)
	out = appendValueTerms(out, termForm, m.st.Form)
	slices.Sort(out)
	return slices.Compact(out)
}

// appendValueTerms indexes string values and string-array elements that
// could be option ids (at most MaxIDBytes), with term (termCustom or
// termForm).
func appendValueTerms(out []string, term func(id, value string) string, vals map[string]json.RawMessage) []string {
	for id, raw := range vals {
		if s, ok := jsonscan.DecodeString(raw); ok {
			if len(s) <= rule.MaxIDBytes {
				out = append(out, term(id, s))
			}
			continue
		}
		if ss, ok := jsonscan.DecodeStrings(raw); ok {
			for _, s := range ss {
				if len(s) <= rule.MaxIDBytes {
					out = append(out, term(id, s))
				}
			}
		}
	}
	return out
}

// updateTerms applies the difference of two sorted term lists.
func (t *txn) updateTerms(m *member, old, cur []string) error {
	i, j := 0, 0
	for i < len(old) || j < len(cur) {
		switch {
		case j >= len(cur) || (i < len(old) && old[i] < cur[j]):
			if err := t.postRemove(m.part, m.spot, old[i], m.ord); err != nil {
				return err
			}
			i++
		case i >= len(old) || cur[j] < old[i]:
			if err := t.postAdd(m.part, m.spot, cur[j], m.ord); err != nil {
				return err
			}
			j++
		default:
			i++
			j++
		}
	}
	return nil
}

// postingDelta is what a transaction changed in one posting list; it is
// applied to the in-memory list after the commit. Posting lists are not
// written to the store: loading a partition derives them from its
// members.
type postingDelta struct {
	adds, removes *roaring.Bitmap
}

// emptyPosting is the posting list of a term no member has; never
// modified.
var emptyPosting = roaring.New()

// base returns the committed posting list from memory (never modified by
// a transaction before it commits; the caller must not modify it). A
// loaded partition holds all its lists, so a missing one is empty.
func (t *txn) base(key string) *roaring.Bitmap {
	if bm, ok := t.e.postings[key]; ok {
		return bm
	}
	return emptyPosting
}

// posting returns a posting list as this transaction sees it, for reading
// only.
func (t *txn) posting(part int32, spot, term string) (*roaring.Bitmap, error) {
	bm := t.base(string(state.PostingKey(part, spot, term)))
	if d := t.deltas[deltaKey{part, spot, term}]; d != nil {
		bm = bm.Clone()
		bm.Or(d.adds)
		bm.AndNot(d.removes)
	}
	return bm, nil
}

// deltaKey names a posting list changed by a transaction; commit turns it
// into the list's key (state.PostingKey) once per list, not per change.
type deltaKey struct {
	part       int32
	spot, term string
}

func (t *txn) delta(part int32, spot, term string) *postingDelta {
	k := deltaKey{part, spot, term}
	d := t.deltas[k]
	if d == nil {
		d = &postingDelta{adds: roaring.New(), removes: roaring.New()}
		t.deltas[k] = d
	}
	return d
}

func (t *txn) postAdd(part int32, spot, term string, ord uint32) error {
	d := t.delta(part, spot, term)
	d.adds.Add(ord)
	d.removes.Remove(ord)
	return nil
}

func (t *txn) postRemove(part int32, spot, term string, ord uint32) error {
	d := t.delta(part, spot, term)
	d.removes.Add(ord)
	d.adds.Remove(ord)
	return nil
}

// backfillSet is the set of eligible members that can match the rule, as
// narrowed by posting lists. The result is a fresh bitmap.
func (t *txn) backfillSet(p int32, spot string, r *rule.Rule) (*roaring.Bitmap, error) {
	c, err := t.candidates(p, spot, r.Root)
	if err != nil {
		return nil, err
	}
	if c == nil {
		if c, err = t.posting(p, spot, termAll); err != nil {
			return nil, err
		}
	}
	elig, err := t.union(p, spot, eligibleTerms)
	if err != nil {
		return nil, err
	}
	return roaring.And(c, elig), nil
}

// candidates returns the members a rule node can be true for in a
// partition, narrowed by posting lists (read-only use; nil means every
// member).
func (t *txn) candidates(p int32, spot string, n *rule.Node) (*roaring.Bitmap, error) {
	switch n.Kind {
	case rule.NodeAll:
		var acc *roaring.Bitmap
		for _, c := range n.Children {
			bm, err := t.candidates(p, spot, c)
			if err != nil {
				return nil, err
			}
			if bm == nil {
				continue
			}
			if acc == nil {
				acc = bm.Clone()
			} else {
				acc.And(bm)
			}
		}
		return acc, nil
	case rule.NodeAny:
		acc := roaring.New()
		for _, c := range n.Children {
			bm, err := t.candidates(p, spot, c)
			if err != nil || bm == nil {
				return nil, err
			}
			acc.Or(bm)
		}
		return acc, nil
	case rule.NodeGroup:
		if n.StaticGroup() {
			return t.posting(p, spot, termStaticGroup(n.Group))
		}
		return t.posting(p, spot, termSmartGroup(n.Group))
	case rule.NodeActivity:
		if n.CountN < 1 || n.CountOp == "lte" { // can be true with no activity
			return nil, nil
		}
		if len(n.Resources) == 0 {
			return t.posting(p, spot, termActivity(n.Activity))
		}
		terms := make([]string, 0, len(n.Resources))
		for _, r := range n.Resources {
			terms = append(terms, termActivityResource(n.Activity, r))
		}
		return t.union(p, spot, terms)
	case rule.NodeField:
		return t.fieldCandidates(p, spot, n)
	}
	return nil, nil
}

// fieldTerm returns the term constructor of the values of an attribute
// trigger's field, for the fields that have posting lists.
func fieldTerm(n *rule.Node) (func(v string) string, bool) {
	src, name := n.Source(), n.Name()
	switch {
	case src == rule.SourceProfile && name == "tags":
		return termTag, true
	case src == rule.SourceProfile && name == "static_groups":
		return termStaticGroup, true
	case src == rule.SourceProfile && name == "status":
		return termStatus, true
	case src == rule.SourceProfile && name == "role":
		return termRole, true
	case src == rule.SourceProfile && name == "language":
		return termLanguage, true
	case src == rule.SourceCustom && n.Schema().Type.Select():
		return func(v string) string { return termCustom(name, v) }, true
	case src == rule.SourceForm && n.Schema().Type.Select():
		return func(v string) string { return termForm(name, v) }, true
	}
	return nil, false
}

func (t *txn) fieldCandidates(p int32, spot string, n *rule.Node) (*roaring.Bitmap, error) {
	term, ok := fieldTerm(n)
	if !ok {
		return nil, nil
	}
	vals, all, ok := n.RequiredValues()
	if !ok {
		return nil, nil
	}
	if all {
		var acc *roaring.Bitmap
		for _, v := range vals {
			bm, err := t.posting(p, spot, term(v))
			if err != nil {
				return nil, err
			}
			if acc == nil {
				acc = bm.Clone()
			} else {
				acc.And(bm)
			}
		}
		return acc, nil
	}
	terms := make([]string, len(vals))
	for i, v := range vals {
		terms[i] = term(v)
	}
	return t.union(p, spot, terms)
}

// union is the union of the posting lists of terms (a fresh bitmap).
func (t *txn) union(p int32, spot string, terms []string) (*roaring.Bitmap, error) {
	bms := make([]*roaring.Bitmap, 0, len(terms))
	for _, term := range terms {
		bm, err := t.posting(p, spot, term)
		if err != nil {
			return nil, err
		}
		bms = append(bms, bm)
	}
	return roaring.FastOr(bms...), nil
}
