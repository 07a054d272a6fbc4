// Package scenario generates deterministic random input streams for the
// smart-group engine: the records of the four input topics, in the
// line format of `smartgroups process` (SPEC §5):
//
//	{"topic":"profiles|activities|properties|definitions","key":…,"value":…|null}
//
// # Model
//
// Generate(seed, cfg) returns the same lines for the same seed and Config,
// byte for byte, on every platform: all randomness comes from one seeded
// PCG source, maps are never iterated to make a choice, and every value is
// built with encoding/json (whose object keys are sorted).
//
// A scenario has up to three spots, each with a pool of members, custom
// properties and form questions of every type, a few static groups and a
// fixed universe of smart-group ids g1…gN. It starts with a few member
// records that arrive before any definition (so their custom values are kept
// for ids not declared yet, and groups defined later must backfill them),
// then declares schemas, static groups and smart groups in an order that
// makes them valid (a smart group gk only ever references smart groups gj
// with j < k, and only schemas, options and groups that exist), and then
// interleaves member records with definition changes: rule updates, group
// creations and deletions, schema updates (relabels, added and removed
// options, type changes, late declarations), blacklist puts and deletes,
// and erasures. The generator tracks what every rule references, so it only
// deletes or changes what nothing references, except when it means to
// produce an invalid record.
//
// Timestamps are drawn around Config.Now: mostly in the past, some exactly
// on the boundaries of the relative windows rules use (now − 30 days, now −
// 12 hours, and one millisecond either side), some in the future. They are
// written as RFC 3339 strings with various offsets and fractions, or as
// integers of epoch milliseconds.
//
// With probability Config.InvalidRate a record is deliberately invalid: bad
// JSON (a value that is not an object), a key that does not match the
// value, an unknown activity type, a property value of the wrong type, an
// invalid rule, a cycle of group triggers, a group type change, the delete
// of a referenced group or property, an oversize tags list, a missing ts,
// and more. GenerateAnnotated returns the same lines with the generator's
// intent (valid or invalid, and what the record exercises), which the tests
// compare with the verdict of the engine's decoders and definition checks.
//
// Lines are read as `process` reads them (connectors/file): Line.Record
// passes an object value's JSON bytes as the record value, a JSON string
// value's contents as the raw record bytes, and a JSON null value is a
// tombstone. "Bad JSON" records are therefore values that are valid JSON at
// the line level but whose record value is not a JSON object: a string
// holding broken JSON or plain text (raw bytes that do not parse), an
// array, a number, a boolean, which the engine must dead-letter.
package scenario
