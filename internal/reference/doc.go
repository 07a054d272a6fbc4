// Package reference is a deliberately naive evaluator of the smart-group
// semantics of SPEC.md, used as the oracle of the model-based tests and as
// the baseline of the benchmarks.
//
// # Model
//
// A Model consumes input records in order (Apply) and answers one question:
// which (spot, group, member) triples are members right now (Memberships).
// It has no indexes, no timers, no incremental maintenance and no
// persistence. Every call to Memberships evaluates every smart group of
// every spot for every known member from scratch, following group triggers
// recursively without memoisation. It is slow on purpose: the fewer clever
// parts it has, the more its answers can be trusted when they disagree with
// the engine.
//
// # What is shared with the engine, and what is not
//
// Record and definition validity are shared by construction: the model
// decodes member records with engine.DecodeMember and definitions records
// with engine.DecodeDefinition, and it keeps an engine.Defs only to run
// Check then Apply on definitions and to look up the current schemas and
// groups. A record that fails decoding or Check is dead-lettered (its offset
// is reported by DeadLettered) and has no effect, exactly as in the engine.
//
// Everything else is the model's own: member state lives in plain Go maps
// (the profile is merged with engine.ProfilePatch.Apply; custom values and
// form answers are kept as raw JSON with merge-patch semantics where null
// clears; activities are a plain list, de-duplicated by activity id per spot
// and member), blacklist entries are kept in the model's own map (erasing a
// member drops that member's entries; deleting a group drops the group's
// entries), and rules are evaluated by walking the compiled rule.Node tree
// through its exported fields only, re-reading trigger values from their raw
// JSON with the semantics written independently from SPEC §3. The model never
// calls rule.Eval or any unexported engine function.
//
// # Time
//
// The model's clock is fixed at the instant given to New. With the event
// clock, it is the largest ts seen so far on valid member records (records
// that decode; a null-value erase carries no ts and does not move it), and
// never goes below the starting instant. Dead-lettered records do not move
// the clock.
package reference
