// Package rule is the rule language of smart groups (SPEC §3): parsing a
// rule, checking it against a spot's names, compiling it, and evaluating
// it for one member at one instant.
//
// # Model
//
// A rule is a JSON tree of all/any/not nodes over three kinds of triggers:
// attribute triggers on a profile field, custom property or form answer
// ("field"), activity triggers that count a member's activities of a type
// ("activity") and group triggers on another group ("group"). CompileRule
// type-checks a rule against a Catalog (the property and question schemas
// and groups of one spot) within Limits and returns a Rule: the compiled
// Node tree with operands folded or parsed once, the inputs the rule reads
// (Deps, for routing changes) and the names it references (for
// referential integrity).
//
// Eval evaluates a compiled rule for a MemberView (what a rule can read of
// one member: profile, custom values, form answers, activities and
// smart-group memberships) at an instant now; Explain also returns the
// tree with every node's value. Nothing here stores anything: the engine
// implements MemberView over its store, and tests and benchmarks over
// memory.
//
// # Time
//
// Date filters within_last and more_than_ago make a rule time-dependent:
// its value can change with time alone. FlipInstants lists the instants
// after now at which a rule's time-dependent triggers can change value for
// a member; NextFlip (and Rule.NextFlip, LeafNextFlip) finds the earliest
// instant one of them actually changes, so a caller can keep one timer per
// member instead of rescanning.
//
// # Values
//
// The member data model (Profile, Activity, Schema and its value types) is
// defined here, with how values are read: Fold is the simple case folding
// under which strings and tags compare, ParseTimestamp and ParseTime read
// instants (Millis, epoch milliseconds), and a Schema says whether a stored
// value fits its declared type.
//
// The package depends on the standard library and engine/internal/jsonscan
// only: no storage, no Kafka, no HTTP.
package rule
