package engine

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/smartgroups/smartgroups/engine/rule"
)

// Defs holds the definitions of every spot: groups with their compiled
// rules, property and question schemas, and blacklist entries, plus the
// derived indexes the engine routes changes with. It is pure in-memory
// logic; the engine persists the definitions themselves.
type Defs struct {
	lim   Limits
	spots map[string]*SpotDefs
}

// SpotDefs are the definitions of one spot.
type SpotDefs struct {
	Spot       string
	Groups     map[string]*GroupDef
	Properties map[string]*rule.Schema
	Questions  map[string]*rule.Schema
	Blacklist  map[string]map[string]bool // group -> member -> true

	// Derived, rebuilt on every change of the spot's groups or schemas.
	order      []string            // smart groups, dependencies first
	rank       map[string]int      // position in order
	readers    map[string][]string // dependency key -> smart groups reading it
	dependents map[string][]string // group -> smart groups with a group trigger on it
	ranked     []rankedGroup       // smart groups by rank, for evaluation
	timeGroups []string            // time-dependent smart groups, in order
	// Relative date conditions of the time groups that a new activity can
	// add flip instants to: activity triggers by type, and date triggers
	// on last_activity_at.
	timeActs    map[string][]*rule.Node
	timeLastAct []*rule.Node
	// hasResources: some group of the spot lists resources.
	hasResources bool
}

// NewDefs returns empty definitions.
func NewDefs(lim Limits) *Defs { return &Defs{lim: lim, spots: map[string]*SpotDefs{}} }

// Spot returns a spot's definitions, or nil.
func (d *Defs) Spot(spot string) *SpotDefs { return d.spots[spot] }

// Spots returns the spot ids in order.
func (d *Defs) Spots() []string {
	out := make([]string, 0, len(d.spots))
	for s := range d.spots {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func (d *Defs) spot(spot string) *SpotDefs {
	s := d.spots[spot]
	if s == nil {
		s = &SpotDefs{Spot: spot, Groups: map[string]*GroupDef{}, Properties: map[string]*rule.Schema{},
			Questions: map[string]*rule.Schema{}, Blacklist: map[string]map[string]bool{}}
		d.spots[spot] = s
		s.derive()
	}
	return s
}

// Property implements SchemaLookup.
func (d *Defs) Property(spot, id string) (*rule.Schema, bool) {
	if s := d.spots[spot]; s != nil {
		p, ok := s.Properties[id]
		return p, ok
	}
	return nil, false
}

// Question implements SchemaLookup.
func (d *Defs) Question(spot, id string) (*rule.Schema, bool) {
	if s := d.spots[spot]; s != nil {
		q, ok := s.Questions[id]
		return q, ok
	}
	return nil, false
}

// Blacklisted reports whether (group, member) is blacklisted.
func (d *Defs) Blacklisted(spot, group, member string) bool {
	s := d.spots[spot]
	return s != nil && s.Blacklist[group][member]
}

type spotCatalog struct {
	s      *SpotDefs
	self   *GroupDef    // the group being defined, visible to its own rule
	schema *rule.Schema // a schema being redefined, seen instead of the current one
}

func (c spotCatalog) Property(id string) (*rule.Schema, bool) {
	if c.schema != nil && c.schema.Kind == "property" && c.schema.ID == id {
		return c.schema, true
	}
	p, ok := c.s.Properties[id]
	return p, ok
}

func (c spotCatalog) Question(id string) (*rule.Schema, bool) {
	if c.schema != nil && c.schema.Kind == "question" && c.schema.ID == id {
		return c.schema, true
	}
	q, ok := c.s.Questions[id]
	return q, ok
}
func (c spotCatalog) Group(id string) (smart, ok bool) {
	if c.self != nil && c.self.ID == id {
		return c.self.Type == GroupSmart, true
	}
	g, ok := c.s.Groups[id]
	if !ok {
		return false, false
	}
	return g.Type == GroupSmart, true
}

// Catalog returns the catalog rules of a spot compile against.
func (d *Defs) Catalog(spot string) rule.Catalog { return spotCatalog{s: d.spot(spot)} }

// referencing returns the smart groups of the spot whose rule satisfies f,
// in id order.
func (s *SpotDefs) referencing(f func(r *rule.Rule) bool) []string {
	var out []string
	for id, g := range s.Groups {
		if g.compiled != nil && f(g.compiled) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// ReferencingGroups returns the smart groups referencing group id.
func (s *SpotDefs) ReferencingGroups(id string) []string {
	return s.referencing(func(r *rule.Rule) bool { return r.ReferencesGroup(id) })
}

// ReferencingSchema returns the smart groups whose rule reads a property
// ("property") or question ("question") id.
func (s *SpotDefs) ReferencingSchema(kind, id string) []string {
	return s.referencing(func(r *rule.Rule) bool {
		if kind == "property" {
			return slices.Contains(r.Properties, id)
		}
		return slices.Contains(r.Questions, id)
	})
}

// ReferencingOption returns the smart groups whose rule names an option of
// a property or question.
func (s *SpotDefs) ReferencingOption(kind, id, option string) []string {
	return s.referencing(func(r *rule.Rule) bool { return slices.Contains(r.Options[kind+":"+id], option) })
}

// ReferencingTag returns the smart groups whose rule names a tag
// (case-insensitively, as tags compare).
func (s *SpotDefs) ReferencingTag(tag string) []string {
	ft := rule.Fold(tag)
	return s.referencing(func(r *rule.Rule) bool {
		for _, t := range r.Tags {
			if rule.Fold(t) == ft {
				return true
			}
		}
		return false
	})
}

func referencedErr(what string, groups []string) *RecordError {
	return rerr(CodeReferenced, "%s is referenced by smart group(s) %s", what, strings.Join(groups, ", "))
}

// Check reports whether a definition change may be applied now.
func (d *Defs) Check(c *DefChange) *RecordError {
	s := d.spot(c.Spot)
	switch c.Kind {
	case "group":
		old := s.Groups[c.ID]
		if c.Delete {
			if old == nil {
				return nil
			}
			if refs := s.ReferencingGroups(c.ID); len(refs) > 0 {
				return referencedErr(fmt.Sprintf("group %q", c.ID), refs)
			}
			return nil
		}
		if old != nil && old.Type != c.Group.Type {
			return rerr(CodeGroupTypeChange, "group %q is %s; a group's type cannot change", c.ID, old.Type)
		}
		if c.Group.Type == GroupStatic {
			return nil
		}
		r, err := rule.CompileRule(c.Group.Rule, spotCatalog{s: s, self: c.Group}, d.lim.Rule())
		if err != nil {
			return rerr(CodeInvalidRule, "group %q: %v", c.ID, err)
		}
		if cyc := s.cycle(c.ID, r); cyc != nil {
			return rerr(CodeCycle, "group %q: group triggers would form a cycle: %s", c.ID, strings.Join(cyc, " -> "))
		}
		c.Group.compiled = r
	case "property", "question":
		schemas := s.Properties
		if c.Kind == "question" {
			schemas = s.Questions
		}
		old := schemas[c.ID]
		if old == nil {
			return nil
		}
		refs := s.ReferencingSchema(c.Kind, c.ID)
		if c.Delete {
			if len(refs) > 0 {
				return referencedErr(fmt.Sprintf("%s %q", c.Kind, c.ID), refs)
			}
			return nil
		}
		if len(refs) > 0 && old.Type != c.Schema.Type {
			return rerr(CodeReferenced, "%s %q cannot change type from %s to %s while referenced by smart group(s) %s",
				c.Kind, c.ID, old.Type, c.Schema.Type, strings.Join(refs, ", "))
		}
		for _, o := range old.Options {
			if c.Schema.HasOption(o.ID) {
				continue
			}
			if refs := s.ReferencingOption(c.Kind, c.ID, o.ID); len(refs) > 0 {
				return referencedErr(fmt.Sprintf("option %q of %s %q", o.ID, c.Kind, c.ID), refs)
			}
		}
		for _, gid := range refs {
			if _, err := rule.CompileRule(s.Groups[gid].Rule, spotCatalog{s: s, schema: c.Schema}, d.lim.Rule()); err != nil {
				return rerr(CodeReferenced, "%s %q: smart group %s would no longer be valid: %v", c.Kind, c.ID, gid, err)
			}
		}
	case "blacklist":
		if c.Delete {
			return nil
		}
		g := s.Groups[c.ID]
		if g == nil {
			return rerr(CodeUnknownGroup, "blacklist entry for group %q, which does not exist", c.ID)
		}
		if g.Type != GroupSmart {
			return rerr(CodeInvalidDefinition, "group %q is static; only smart groups have a blacklist", c.ID)
		}
	}
	return nil
}

// cycle returns the path of a cycle that defining group id with rule r
// would create, or nil.
func (s *SpotDefs) cycle(id string, r *rule.Rule) []string {
	deps := func(g string) []string {
		if g == id {
			return r.Groups
		}
		if def := s.Groups[g]; def != nil && def.compiled != nil {
			return def.compiled.Groups
		}
		return nil
	}
	var path []string
	seen := map[string]bool{}
	var visit func(g string) bool
	visit = func(g string) bool {
		path = append(path, g)
		for _, n := range deps(g) {
			if n == id {
				path = append(path, n)
				return true
			}
			if !seen[n] {
				seen[n] = true
				if visit(n) {
					return true
				}
			}
		}
		path = path[:len(path)-1]
		return false
	}
	if visit(id) {
		return path
	}
	return nil
}

// Apply applies a change that passed Check.
func (d *Defs) Apply(c *DefChange) {
	s := d.spot(c.Spot)
	switch c.Kind {
	case "group":
		if c.Delete {
			delete(s.Groups, c.ID)
			delete(s.Blacklist, c.ID)
		} else {
			s.Groups[c.ID] = c.Group
		}
		s.derive()
	case "property", "question":
		schemas := s.Properties
		if c.Kind == "question" {
			schemas = s.Questions
		}
		if c.Delete {
			delete(schemas, c.ID)
		} else {
			schemas[c.ID] = c.Schema
		}
		// Check compiled every referencing rule against the new schema.
		_ = s.recompile(c.Kind, c.ID, d.lim)
	case "blacklist":
		if c.Delete {
			delete(s.Blacklist[c.ID], c.Member)
			if len(s.Blacklist[c.ID]) == 0 {
				delete(s.Blacklist, c.ID)
			}
		} else {
			if s.Blacklist[c.ID] == nil {
				s.Blacklist[c.ID] = map[string]bool{}
			}
			s.Blacklist[c.ID][c.Member] = true
		}
	}
}

// recompile recompiles the rules reading a schema after it changed. The
// change passed Check (no referenced option removed, no type change while
// referenced), so they stay valid; a rule that still fails to compile is
// kept as it was and reported.
func (s *SpotDefs) recompile(kind, id string, lim Limits) []error {
	var errs []error
	for _, gid := range s.ReferencingSchema(kind, id) {
		g := s.Groups[gid]
		r, err := rule.CompileRule(g.Rule, spotCatalog{s: s}, lim.Rule())
		if err != nil {
			errs = append(errs, fmt.Errorf("engine: group %s/%s no longer compiles after %s %q changed: %w", s.Spot, gid, kind, id, err))
			continue
		}
		g.compiled = r
	}
	s.derive()
	return errs
}

// LoadGroup installs a group definition without checks, used when
// restoring persisted definitions; call Finish afterwards.
func (d *Defs) LoadGroup(g *GroupDef) { d.spot(g.Spot).Groups[g.ID] = g }

// LoadSchema installs a schema without checks.
func (d *Defs) LoadSchema(s *rule.Schema) {
	sd := d.spot(s.Spot)
	s.IndexOptions()
	if s.Kind == "question" {
		sd.Questions[s.ID] = s
	} else {
		sd.Properties[s.ID] = s
	}
}

// LoadBlacklist installs a blacklist entry without checks.
func (d *Defs) LoadBlacklist(b *Blacklist) {
	sd := d.spot(b.Spot)
	if sd.Blacklist[b.Group] == nil {
		sd.Blacklist[b.Group] = map[string]bool{}
	}
	sd.Blacklist[b.Group][b.Member] = true
}

// Finish compiles every loaded smart group and rebuilds derived indexes.
func (d *Defs) Finish() error {
	for _, s := range d.spots {
		for _, g := range s.Groups {
			if g.Type != GroupSmart {
				continue
			}
			r, err := rule.CompileRule(g.Rule, spotCatalog{s: s}, d.lim.Rule())
			if err != nil {
				return fmt.Errorf("engine: stored group %s/%s no longer compiles: %w", s.Spot, g.ID, err)
			}
			g.compiled = r
		}
		s.derive()
	}
	return nil
}

// derive rebuilds the order, readers, dependents and time-group indexes.
func (s *SpotDefs) derive() {
	ids := make([]string, 0, len(s.Groups))
	for id, g := range s.Groups {
		if g.Type == GroupSmart && g.compiled != nil {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	s.readers = map[string][]string{}
	s.dependents = map[string][]string{}
	indeg := map[string]int{}
	for _, id := range ids {
		r := s.Groups[id].compiled
		for _, dep := range r.Deps {
			s.readers[dep] = append(s.readers[dep], id)
		}
		for _, g := range r.Groups {
			s.dependents[g] = append(s.dependents[g], id)
			if gd := s.Groups[g]; gd != nil && gd.Type == GroupSmart {
				indeg[id]++
			}
		}
	}
	// Kahn's algorithm, smallest id first for a deterministic order.
	var ready, order []string
	for _, id := range ids {
		if indeg[id] == 0 {
			ready = append(ready, id)
		}
	}
	for len(ready) > 0 {
		slices.Sort(ready)
		id := ready[0]
		ready = ready[1:]
		order = append(order, id)
		for _, dep := range s.dependents[id] {
			indeg[dep]--
			if indeg[dep] == 0 {
				ready = append(ready, dep)
			}
		}
	}
	s.order = order
	s.hasResources = false
	for _, g := range s.Groups {
		s.hasResources = s.hasResources || len(g.Resources) > 0
	}
	s.rank = make(map[string]int, len(order))
	s.timeGroups = nil
	s.timeActs, s.timeLastAct = map[string][]*rule.Node{}, nil
	for i, id := range order {
		s.rank[id] = i
		if s.Groups[id].compiled.TimeDependent {
			s.timeGroups = append(s.timeGroups, id)
			s.collectTimeNodes(s.Groups[id].compiled.Root)
		}
	}
	s.ranked = make([]rankedGroup, len(order))
	for i, id := range order {
		rg := &s.ranked[i]
		rg.id, rg.term, rg.compiled = id, termSmartGroup(id), s.Groups[id].compiled
		for _, d := range s.dependents[id] {
			if r, ok := s.rank[d]; ok {
				rg.dependents = append(rg.dependents, r)
			}
		}
		slices.Sort(rg.dependents)
	}
}

// rankedGroup is what evaluation needs of a smart group, by rank.
type rankedGroup struct {
	id, term   string // the group id and its posting term
	compiled   *rule.Rule
	dependents []int // ranks of the smart groups with a group trigger on it, ascending
}

func (s *SpotDefs) collectTimeNodes(n *rule.Node) {
	switch n.Kind {
	case rule.NodeAll, rule.NodeAny, rule.NodeNot:
		for _, c := range n.Children {
			s.collectTimeNodes(c)
		}
	case rule.NodeField:
		if n.TimeDependent() && n.Source() == rule.SourceProfile && n.Name() == "last_activity_at" {
			s.timeLastAct = append(s.timeLastAct, n)
		}
	case rule.NodeActivity:
		if n.TimeDependent() {
			s.timeActs[n.Activity] = append(s.timeActs[n.Activity], n)
		}
	}
}

// Order returns the smart groups in dependency order.
func (s *SpotDefs) Order() []string { return s.order }

// Readers returns the smart groups that read a dependency key.
func (s *SpotDefs) Readers(dep string) []string { return s.readers[dep] }

// Dependents returns the smart groups with a group trigger on id.
func (s *SpotDefs) Dependents(id string) []string { return s.dependents[id] }

// TimeGroups returns the time-dependent smart groups.
func (s *SpotDefs) TimeGroups() []string { return s.timeGroups }

// Rank returns a smart group's position in dependency order.
func (s *SpotDefs) Rank(id string) (int, bool) { r, ok := s.rank[id]; return r, ok }

// Fingerprint identifies what of a smart group's definition determines its
// members: the rule and the schemas it reads. Two equal fingerprints mean
// the same membership for the same member data.
func (s *SpotDefs) Fingerprint(id string) string {
	g := s.Groups[id]
	if g == nil || g.compiled == nil {
		return ""
	}
	parts := []string{g.compiled.Canonical}
	for _, p := range g.compiled.Properties {
		if sc := s.Properties[p]; sc != nil {
			parts = append(parts, "p:"+p+"="+sc.Fingerprint())
		}
	}
	for _, q := range g.compiled.Questions {
		if sc := s.Questions[q]; sc != nil {
			parts = append(parts, "q:"+q+"="+sc.Fingerprint())
		}
	}
	b, _ := json.Marshal(parts)
	return string(b)
}

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
	// Resources are the resources the group gives access to (SPEC §2.4).
	Resources []Resource `json:"resources,omitempty"`

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
