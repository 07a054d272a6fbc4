// Package file is the NDJSON source and sink behind `smartgroups process`.
//
// Lifecycle: NewSource wraps a reader; Next returns up to a batch of
// records in file order, io.EOF at the end; the caller processes the
// batch and writes its output with a Sink (Events, DeadLetters, Flush)
// before asking for the next batch. There is nothing to commit: a file is
// read once.
//
// Input lines are {"topic": "profiles|activities|properties|definitions",
// "key": string|null, "value": object|null}. A value that is a JSON string
// is taken as the raw record bytes, so malformed payloads can be replayed
// as they were seen (a dead letter's value is such a string). Member
// records are placed on partition 0, the offset of a record is its 0-based
// line number, and a line that cannot be framed (not a JSON object, a
// topic that is not a string, a key that is not a string or null) becomes
// a record the engine dead-letters with the reason. Line is this format,
// for reading (Decode, Line.Record) and for writing (Line.AppendJSON,
// WriteLines); the test-scenario generator and the benchmark write their
// inputs with it.
//
// Output lines are membership events (SPEC §4.2) in emission order; dead
// letters are NDJSON objects with topic, partition, offset, key, value,
// reason and code. The same input gives the same output bytes.
package file
