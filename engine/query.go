package engine

// Read-only queries for the HTTP API (SPEC §6): previews, member listings,
// dry-run diffs, counts, explanations. They answer for the partitions this
// engine owns; a runtime spreads a spot-wide query over the instances that
// own the other partitions and merges the answers (the engine knows nothing
// about other instances).
//
// A query reads member state through a throw-away transaction and commits
// nothing. It holds e.mu while it reads, but a query over many members
// releases it every queryChunk members so that the processing loop (and its
// timers) is never stalled for long: each member is read at one instant,
// the whole result is not a snapshot of one instant.

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/smartgroups/smartgroups/engine/rule"
)

// Query errors.
var (
	// ErrNotOwned is returned for a partition this engine does not own.
	ErrNotOwned = errors.New("engine: partition not owned by this instance")
	// ErrUnknownGroup is returned for a group that is not defined.
	ErrUnknownGroup = errors.New("engine: unknown group")
	// ErrUnknownMember is returned for a member the engine has no state of.
	ErrUnknownMember = errors.New("engine: unknown member")
)

// queryChunk is how many members a query evaluates per acquisition of e.mu.
const queryChunk = 2048

// ViewDefs calls fn with the definitions while no batch can change them.
// fn must not modify them nor keep references to maps after it returns
// (definitions values such as *GroupDef and *Schema are replaced, never
// modified, so keeping those is safe).
func (e *Engine) ViewDefs(fn func(d *Defs)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	fn(e.defs)
}

// CheckDefinition reports whether a definitions record with this key and
// value (nil: a delete) would be applied now, or why it would be
// dead-lettered: the same decoding and Defs.Check the engine runs on the
// definitions topic. A runtime calls it before producing a definition.
func (e *Engine) CheckDefinition(key string, value []byte) *RecordError {
	e.mu.Lock()
	defer e.mu.Unlock()
	dc, rerr := DecodeDefinition(Record{Kind: KindDefinitions, Key: []byte(key), Value: value}, e.cfg.Limits)
	if rerr != nil {
		return rerr
	}
	return e.defs.Check(dc)
}

// PartitionOf returns the input partition owning a member
// (Config.PartitionOf).
func (e *Engine) PartitionOf(spot, member string) int32 { return e.cfg.PartitionOf(spot, member) }

// SortKey orders members by display name: first name, then last name
// (both case-folded), then member id. Ids are unique within a spot, so the
// order is total and a key can serve as a pagination cursor.
type SortKey struct {
	First string `json:"f"`
	Last  string `json:"l"`
	ID    string `json:"i"`
}

// Less reports whether k sorts before o.
func (k SortKey) Less(o SortKey) bool {
	if k.First != o.First {
		return k.First < o.First
	}
	if k.Last != o.Last {
		return k.Last < o.Last
	}
	return k.ID < o.ID
}

// MemberSummary is what a member listing shows of a member.
type MemberSummary struct {
	Member    string `json:"member"`
	FirstName string `json:"first_name,omitempty"`
	LastName  string `json:"last_name,omitempty"`
	Email     string `json:"email,omitempty"`
	Status    string `json:"status,omitempty"`
	Role      string `json:"role,omitempty"`
}

// Key returns the member's sort key.
func (m *MemberSummary) Key() SortKey {
	return SortKey{First: rule.Fold(m.FirstName), Last: rule.Fold(m.LastName), ID: m.Member}
}

func summarize(st *MemberState) MemberSummary {
	p := &st.Profile
	s := func(v *string) string {
		if v == nil {
			return ""
		}
		return *v
	}
	return MemberSummary{Member: st.ID, FirstName: s(p.FirstName), LastName: s(p.LastName), Email: s(p.Email),
		Status: s(p.Status), Role: s(p.Role)}
}

// MemberFilter narrows a member query. Zero values filter nothing.
type MemberFilter struct {
	// Query matches, case-insensitively, a substring of the first name,
	// the last name, "first last" or the email.
	Query string
	// Roles keeps members with any of these roles (case-insensitive).
	Roles []string
	// Statuses keeps members with any of these statuses.
	Statuses []string
}

// match reports whether a member passes the Query filter; q is the folded
// query.
func (f *MemberFilter) match(s *MemberSummary, q string) bool {
	if q == "" {
		return true
	}
	first, last := rule.Fold(s.FirstName), rule.Fold(s.LastName)
	return strings.Contains(first, q) || strings.Contains(last, q) ||
		strings.Contains(first+" "+last, q) || strings.Contains(rule.Fold(s.Email), q)
}

// MemberQuery selects members of one spot.
type MemberQuery struct {
	Spot string
	// Group selects a defined group's current members: a smart group's
	// membership set, or the members listing a static group in
	// static_groups.
	Group string
	// StaticGroup selects the members listing this id in static_groups,
	// whether or not a group with this id is defined.
	StaticGroup string
	// Rule selects the eligible members a rule matches at the engine's now
	// (a preview).
	Rule json.RawMessage
	// Blacklist, with Rule, leaves out the members blacklisted in this
	// group.
	Blacklist string
	Filter    MemberFilter
	// After, when set, is the sort key of the last member already seen.
	After *SortKey
	// Limit is the most members returned; 0 counts only.
	Limit int
}

// MemberPage is the answer to a MemberQuery.
type MemberPage struct {
	// Total counts the members selected (after filters).
	Total int `json:"total"`
	// Remaining counts those that sort after After (all when After is nil).
	Remaining int `json:"remaining"`
	// Members are the first Limit of those, in SortKey order.
	Members []MemberSummary `json:"members"`
}

// QueryMembers answers a member query for the given partitions, which must
// all be owned. Candidates are narrowed with the posting lists (the same
// narrowing as a backfill), so only members that can match are read.
func (e *Engine) QueryMembers(ctx context.Context, parts []int32, q MemberQuery) (*MemberPage, error) {
	if n := btoi(q.Group != "") + btoi(q.StaticGroup != "") + btoi(q.Rule != nil); n != 1 {
		return nil, errors.New("engine: a member query needs exactly one of Group, StaticGroup and Rule")
	}
	type keyed struct {
		k SortKey
		s MemberSummary
	}
	top := newTopK(q.Limit, func(a, b keyed) bool { return a.k.Less(b.k) })
	page := &MemberPage{}
	query := rule.Fold(q.Filter.Query)
	for _, p := range parts {
		set, compiled, err := e.querySet(p, &q)
		if err != nil {
			return nil, err
		}
		err = e.eachChunk(ctx, p, q.Spot, set, func(t *txn, ords []uint32) error {
			sd := e.defs.Spot(q.Spot)
			for _, ord := range ords {
				m, err := t.memberByOrd(p, q.Spot, ord)
				if err != nil {
					return err
				}
				if m == nil {
					continue
				}
				s, ok, err := selectMember(m, compiled, q.Blacklist != "" && sd != nil && sd.Blacklist[q.Blacklist][m.st.ID], e.now)
				t.release(m)
				if err != nil {
					return err
				}
				if !ok || !q.Filter.match(&s, query) {
					continue
				}
				page.Total++
				k := s.Key()
				if q.After != nil && !q.After.Less(k) {
					continue
				}
				page.Remaining++
				top.offer(keyed{k, s})
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	page.Members = []MemberSummary{}
	for _, x := range top.sorted() {
		page.Members = append(page.Members, x.s)
	}
	return page, nil
}

// selectMember evaluates a member query's rule (when there is one) for a
// member and summarizes a member it selects.
func selectMember(m *member, compiled *rule.Rule, blacklisted bool, now rule.Millis) (MemberSummary, bool, error) {
	if compiled != nil {
		if !m.eligible() || blacklisted {
			return MemberSummary{}, false, nil
		}
		ok, err := rule.Eval(compiled, m, now)
		if err != nil || !ok {
			return MemberSummary{}, false, err
		}
	}
	return summarize(m.st), true, nil
}

// querySet computes, under e.mu, the candidate ordinals of a member query
// in partition p (a fresh bitmap) and compiles its rule.
func (e *Engine) querySet(p int32, q *MemberQuery) (*roaring.Bitmap, *rule.Rule, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.readable(p); err != nil {
		return nil, nil, err
	}
	t := e.begin()
	defer t.close()
	var set *roaring.Bitmap
	var compiled *rule.Rule
	if q.Rule != nil {
		r, err := rule.CompileRule(q.Rule, e.defs.Catalog(q.Spot), e.cfg.Limits.Rule())
		if err != nil {
			return nil, nil, rerr(CodeInvalidRule, "%v", err)
		}
		compiled = r
		if set, err = t.backfillSet(p, q.Spot, r); err != nil {
			return nil, nil, err
		}
	} else if q.StaticGroup != "" {
		bm, err := t.posting(p, q.Spot, termStaticGroup(q.StaticGroup))
		if err != nil {
			return nil, nil, err
		}
		set = bm.Clone()
	} else {
		sd := e.defs.Spot(q.Spot)
		var g *GroupDef
		if sd != nil {
			g = sd.Groups[q.Group]
		}
		if g == nil {
			return nil, nil, fmt.Errorf("%w: %q", ErrUnknownGroup, q.Group)
		}
		bm, err := t.posting(p, q.Spot, termGroup(q.Group, g.Type))
		if err != nil {
			return nil, nil, err
		}
		set = bm.Clone()
	}
	for _, f := range []struct {
		term func(string) string
		vals []string
	}{{termRole, q.Filter.Roles}, {termStatus, q.Filter.Statuses}} {
		if len(f.vals) == 0 {
			continue
		}
		terms := make([]string, len(f.vals))
		for i, v := range f.vals {
			terms[i] = f.term(v)
		}
		bm, err := t.union(p, q.Spot, terms)
		if err != nil {
			return nil, nil, err
		}
		set.And(bm)
	}
	if q.Rule != nil && q.Blacklist != "" {
		if sd := e.defs.Spot(q.Spot); sd != nil {
			for m := range sd.Blacklist[q.Blacklist] {
				if e.cfg.PartitionOf(q.Spot, m) != p {
					continue
				}
				if ord, ok, err := t.lookupOrd(p, q.Spot, m); err != nil {
					return nil, nil, err
				} else if ok {
					set.Remove(ord)
				}
			}
		}
	}
	return set, compiled, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// readable checks, under e.mu, that partition p can be queried.
func (e *Engine) readable(p int32) error {
	if e.broken != nil {
		return e.broken
	}
	if !e.owned[p] {
		return fmt.Errorf("%w: partition %d", ErrNotOwned, p)
	}
	return nil
}

// eachChunk calls fn with the ordinals of set, queryChunk at a time, each
// call under e.mu with a fresh read transaction.
func (e *Engine) eachChunk(ctx context.Context, p int32, spot string, set *roaring.Bitmap, fn func(t *txn, ords []uint32) error) error {
	it := set.ManyIterator()
	buf := make([]uint32, queryChunk)
	for {
		n := it.NextMany(buf)
		if n == 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		err := func() error {
			e.mu.Lock()
			defer e.mu.Unlock()
			if err := e.readable(p); err != nil {
				return err
			}
			t := e.begin()
			defer t.close()
			return fn(t, buf[:n])
		}()
		if err != nil {
			return err
		}
	}
}

// RuleDiff is what changing a smart group's rule would do now.
type RuleDiff struct {
	AddedCount   int      `json:"added_count"`
	RemovedCount int      `json:"removed_count"`
	Added        []string `json:"added"`   // the first Limit member ids added, in id order
	Removed      []string `json:"removed"` // the first Limit member ids removed, in id order
}

// DiffRule computes, for the given owned partitions, which members would
// join and leave smart group `group` if its rule became raw now (the
// group's blacklist and eligibility apply; groups depending on it are not
// followed). limit bounds the ids returned per list.
func (e *Engine) DiffRule(ctx context.Context, parts []int32, spot, group string, raw json.RawMessage, limit int) (*RuleDiff, error) {
	byID := func(a, b string) bool { return a < b }
	added, removed := newTopK(limit, byID), newTopK(limit, byID)
	d := &RuleDiff{}
	for _, p := range parts {
		set, r, err := e.diffSet(p, spot, group, raw)
		if err != nil {
			return nil, err
		}
		err = e.eachChunk(ctx, p, spot, set, func(t *txn, ords []uint32) error {
			sd := e.defs.Spot(spot)
			for _, ord := range ords {
				m, err := t.memberByOrd(p, spot, ord)
				if err != nil {
					return err
				}
				if m == nil {
					continue
				}
				want := false
				if m.eligible() && (sd == nil || !sd.Blacklist[group][m.st.ID]) {
					if want, err = rule.Eval(r, m, e.now); err != nil {
						return err
					}
				}
				// The id outlives the member: it is a view of the
				// immutable state in memory.
				switch id, have := m.st.ID, m.InSmartGroup(group); {
				case want && !have:
					d.AddedCount++
					added.offer(id)
				case have && !want:
					d.RemovedCount++
					removed.offer(id)
				}
				t.release(m)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	d.Added, d.Removed = added.sorted(), removed.sorted()
	if d.Added == nil {
		d.Added = []string{}
	}
	if d.Removed == nil {
		d.Removed = []string{}
	}
	return d, nil
}

func (e *Engine) diffSet(p int32, spot, group string, raw json.RawMessage) (*roaring.Bitmap, *rule.Rule, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.readable(p); err != nil {
		return nil, nil, err
	}
	sd := e.defs.Spot(spot)
	if sd == nil || sd.Groups[group] == nil || sd.Groups[group].Type != GroupSmart {
		return nil, nil, fmt.Errorf("%w: no smart group %q", ErrUnknownGroup, group)
	}
	r, err := rule.CompileRule(raw, e.defs.Catalog(spot), e.cfg.Limits.Rule())
	if err != nil {
		return nil, nil, rerr(CodeInvalidRule, "%v", err)
	}
	t := e.begin()
	defer t.close()
	set, err := t.backfillSet(p, spot, r)
	if err != nil {
		return nil, nil, err
	}
	cur, err := t.posting(p, spot, termSmartGroup(group))
	if err != nil {
		return nil, nil, err
	}
	set.Or(cur)
	return set, r, nil
}

// GroupCounts returns the member count of every group of a spot in the
// given owned partitions: a smart group's membership set, and for a static
// group the members listing it in static_groups.
func (e *Engine) GroupCounts(parts []int32, spot string) (map[string]int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]int{}
	sd := e.defs.Spot(spot)
	if sd == nil {
		return out, nil
	}
	t := e.begin()
	defer t.close()
	for _, p := range parts {
		if err := e.readable(p); err != nil {
			return nil, err
		}
		for id, g := range sd.Groups {
			bm, err := t.posting(p, spot, termGroup(id, g.Type))
			if err != nil {
				return nil, err
			}
			out[id] += int(bm.GetCardinality())
		}
	}
	return out, nil
}

// Explanation says why a member is or is not in a group (SPEC §6).
type Explanation struct {
	InGroup     bool `json:"in_group"`
	Eligible    bool `json:"eligible"`
	Blacklisted bool `json:"blacklisted"`
	// Rule is the smart group's rule tree with a "value" on every node
	// (nil for a static group).
	Rule rule.ExplainNode `json:"rule"`
	// EvaluatedAt is the engine's now used for the rule's values.
	EvaluatedAt string `json:"evaluated_at"`
	// Resources are the resources the group gives access to.
	Resources []Resource `json:"resources"`
	// Since is when the member joined the smart group, while in it
	// (empty for a membership older than the history).
	Since string `json:"since,omitempty"`
}

// ExplainMember explains the membership of a member in a group. The
// member's partition must be owned.
func (e *Engine) ExplainMember(spot, group, member string) (*Explanation, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	sd := e.defs.Spot(spot)
	if sd == nil || sd.Groups[group] == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownGroup, group)
	}
	g := sd.Groups[group]
	m, t, err := e.loadMember(spot, member)
	if err != nil {
		return nil, err
	}
	defer t.close()
	x := &Explanation{Eligible: m.eligible(), EvaluatedAt: rule.FormatMillis(e.now), Resources: append([]Resource{}, g.Resources...)}
	if g.Type == GroupStatic {
		x.InGroup = slices.Contains(m.st.Profile.StaticGroups, group)
		return x, nil
	}
	x.InGroup = m.InSmartGroup(group)
	if x.InGroup {
		x.Since, _ = e.sinceOf(spot, member, group)
	}
	x.Blacklisted = sd.Blacklist[group][member]
	_, tree, err := rule.Explain(g.compiled, m, e.now)
	if err != nil {
		return nil, err
	}
	x.Rule = tree
	return x, nil
}

// MemberGroups returns the smart groups a member is in, in id order. The
// member's partition must be owned.
func (e *Engine) MemberGroups(spot, member string) ([]string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m, t, err := e.loadMember(spot, member)
	if err != nil {
		return nil, err
	}
	defer t.close()
	return append([]string{}, m.st.Groups...), nil
}

// loadMember reads a member of an owned partition under e.mu; the caller
// closes the returned transaction.
func (e *Engine) loadMember(spot, id string) (*member, *txn, error) {
	p := e.cfg.PartitionOf(spot, id)
	if err := e.readable(p); err != nil {
		return nil, nil, err
	}
	t := e.begin()
	m, err := t.memberByID(p, spot, id, false)
	if err == nil && m == nil {
		err = fmt.Errorf("%w: %q", ErrUnknownMember, id)
	}
	if err != nil {
		t.close()
		return nil, nil, err
	}
	return m, t, nil
}

// topK keeps the k smallest values offered, by less.
type topK[T any] struct {
	k    int
	less func(a, b T) bool
	h    maxHeap[T]
}

func newTopK[T any](k int, less func(a, b T) bool) *topK[T] {
	return &topK[T]{k: k, less: less, h: maxHeap[T]{less: less}}
}

func (t *topK[T]) offer(v T) {
	if t.k <= 0 {
		return
	}
	if len(t.h.items) < t.k {
		heap.Push(&t.h, v)
		return
	}
	if t.less(v, t.h.items[0]) {
		t.h.items[0] = v
		heap.Fix(&t.h, 0)
	}
}

func (t *topK[T]) sorted() []T {
	out := append([]T(nil), t.h.items...)
	sort.Slice(out, func(i, j int) bool { return t.less(out[i], out[j]) })
	return out
}

// maxHeap is a heap whose root is the largest item by less.
type maxHeap[T any] struct {
	items []T
	less  func(a, b T) bool
}

func (h *maxHeap[T]) Len() int           { return len(h.items) }
func (h *maxHeap[T]) Less(i, j int) bool { return h.less(h.items[j], h.items[i]) }
func (h *maxHeap[T]) Swap(i, j int)      { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *maxHeap[T]) Push(x any)         { h.items = append(h.items, x.(T)) }
func (h *maxHeap[T]) Pop() any {
	n := len(h.items) - 1
	x := h.items[n]
	h.items = h.items[:n]
	return x
}
