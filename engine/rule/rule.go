package rule

import (
	"encoding/json"
	"slices"
)

// Limits bound what a rule may contain (SPEC §4). Each breach is refused
// with a reason naming the limit.
type Limits struct {
	MaxRuleDepth int // nesting of a rule, default 32
	MaxRuleNodes int // nodes of a rule, default 1,000
	MaxValues    int // entries in a trigger's value list, default 1,000
}

// DefaultLimits returns the rule limits of SPEC §4.
func DefaultLimits() Limits {
	return Limits{MaxRuleDepth: 32, MaxRuleNodes: 1000, MaxValues: 1000}
}

// NodeKind says what a rule node is.
type NodeKind uint8

// Rule node kinds.
const (
	NodeAll NodeKind = iota + 1
	NodeAny
	NodeNot
	NodeField
	NodeActivity
	NodeGroup
)

type fieldType uint8

const (
	ftString fieldType = iota + 1
	ftStatus
	ftTags   // set of strings compared case-insensitively
	ftIDSet  // set of ids compared exactly (static_groups, multi_select)
	ftDate   // timestamp
	ftNumber // number
	ftBool
	ftSingle // single_select
)

func (t fieldType) String() string {
	return [...]string{"", "string", "status", "set", "set", "date", "number", "boolean", "single_select"}[t]
}

// DateCond is a compiled date filter. For the relative ops within_last and
// more_than_ago, A holds the duration in milliseconds.
type DateCond struct {
	Op string
	A  Millis
	B  Millis
}

// Relative reports whether the filter is relative to now (within_last,
// more_than_ago): its value can change with time alone.
func (d *DateCond) Relative() bool { return d.Op == "within_last" || d.Op == "more_than_ago" }

// test reports whether t passes the filter at now.
func (d *DateCond) test(t, now Millis) bool {
	switch d.Op {
	case "before":
		return t < d.A
	case "after":
		return t > d.A
	case "between":
		return d.A <= t && t <= d.B
	case "within_last":
		return now-d.A <= t && t <= now
	case "more_than_ago":
		return t < now-d.A
	}
	return false
}

// Node is a compiled rule node.
type Node struct {
	Kind     NodeKind
	Children []*Node

	// Attribute trigger.
	Field  string
	Op     string
	Value  json.RawMessage
	src    Source
	name   string // profile field, utm key, property or question id
	ftype  fieldType
	schema *Schema
	str    string   // folded string operand
	strs   []string // folded (strings, tags) or exact (ids) operands
	num    float64
	lo, hi float64
	date   DateCond

	// Activity trigger.
	Activity  string
	Resources []string
	resSet    map[string]struct{}
	When      *DateCond
	CountOp   string
	CountN    int64

	// Group trigger.
	Group       string
	groupStatic bool

	raw json.RawMessage
}

// Rule is a compiled, type-checked smart-group rule.
type Rule struct {
	Root *Node
	// Canonical is the compact JSON of the rule as given.
	Canonical string
	// Deps are the inputs the rule reads: "p.<field>", "p.utm", "c.<id>",
	// "f.<id>", "a.<activity type>", "g.<smart group id>".
	Deps []string
	// TimeDependent is true when some trigger's value can change with time
	// alone (within_last, more_than_ago).
	TimeDependent bool
	// References, for referential integrity and the references endpoint.
	Tags         []string            // as written in the rule
	Properties   []string            // custom property ids
	Questions    []string            // form question ids
	Options      map[string][]string // "property:<id>" / "question:<id>" -> option ids
	Groups       []string            // groups named by group triggers
	StaticGroups []string            // group ids in profile.static_groups triggers
	Nodes        int

	// timeLeaves are the time-dependent triggers of the tree, in order,
	// for NextFlip; compiled says they were collected (CompileRule).
	timeLeaves []*Node
	compiled   bool
}

// ReferencesGroup reports whether the rule references group id.
func (r *Rule) ReferencesGroup(id string) bool {
	return slices.Contains(r.Groups, id) || slices.Contains(r.StaticGroups, id)
}

// Catalog resolves the names a rule refers to within one spot.
type Catalog interface {
	Property(id string) (*Schema, bool)
	Question(id string) (*Schema, bool)
	// Group reports whether group id exists and whether it is a smart
	// group (false: a static group).
	Group(id string) (smart, ok bool)
}

// ActivityTypes are the activity types of SPEC §2.2.
var ActivityTypes = []string{
	"registered_to_live", "attended_live", "watched_replay", "joined_spot",
	"requested_to_join_spot", "left_spot", "started_course", "completed_course",
	"opened_document", "opened_link", "created_topic", "answered_topic",
	"started_learning_path", "completed_learning_path",
}

var activityTypeSet = func() map[string]bool {
	m := make(map[string]bool, len(ActivityTypes))
	for _, t := range ActivityTypes {
		m[t] = true
	}
	return m
}()

// ActivityHasResource reports whether an activity type carries a resource.
func ActivityHasResource(t string) bool {
	return t != "joined_spot" && t != "requested_to_join_spot" && t != "left_spot"
}

// Statuses are the member statuses of SPEC §2.1.
var Statuses = []string{"accepted", "invited", "pending", "deactivated", "unsubscribed", "declined", "rejected"}

// Eligible reports whether a status allows smart-group membership.
func Eligible(status string) bool {
	return status == "accepted" || status == "invited" || status == "pending"
}

// Source is where an attribute trigger's field lives.
type Source uint8

// Field sources.
const (
	SourceProfile Source = iota + 1 // profile.<field>
	SourceUTM                       // profile.utm.<key>
	SourceCustom                    // custom.<property id>
	SourceForm                      // form.<question id>
)

// Source returns where the field of an attribute trigger lives (0 for
// other nodes).
func (n *Node) Source() Source { return n.src }

// Name returns the field name of an attribute trigger without its source
// prefix: the profile field, utm key, property id or question id.
func (n *Node) Name() string { return n.name }

// Schema returns the schema of a custom property or form question trigger
// (nil for profile fields).
func (n *Node) Schema() *Schema { return n.schema }

// StaticGroup reports whether a group trigger names a static group.
func (n *Node) StaticGroup() bool { return n.groupStatic }

// TimeDependent reports whether the node itself (not its children) can
// change value with time alone: a date trigger or an activity trigger
// with a relative date filter.
func (n *Node) TimeDependent() bool {
	switch n.Kind {
	case NodeField:
		return n.ftype == ftDate && n.date.Relative()
	case NodeActivity:
		return n.When != nil && n.When.Relative()
	}
	return false
}

// RequiredValues says which values of its field a member must have for an
// attribute trigger to be true: one of values (all false) or every one of
// them (all true), folded as the trigger compares them. ok is false when
// the trigger can be true without any particular value (negative ops,
// ranges, is_set, is_not_set, ...).
func (n *Node) RequiredValues() (values []string, all, ok bool) {
	if n.Kind != NodeField {
		return nil, false, false
	}
	switch n.Op {
	case "eq":
		if n.ftype != ftString {
			return nil, false, false
		}
		return []string{n.str}, false, true
	case "in", "has_any":
		return n.strs, false, true
	case "has_all":
		return n.strs, true, true
	}
	return nil, false, false
}
