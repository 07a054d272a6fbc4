// Package state is the Pebble-backed store of the engine: member state,
// activities, per-key output sequence numbers, timers, input positions and
// the output outbox. The engine keeps the partitions it owns in memory and
// reads the store only to load one; Store.Reads counts reads, so tests can
// check that.
//
// # Model
//
// Everything lives in one Pebble database. The engine reads through a
// Reader (the Store itself, or a Batch, which sees its own writes). In
// file mode it writes an input batch's effects into ONE Batch committed
// with Sync, so state, indexes, timers, outbox and input positions never
// disagree after a crash. In serve the Kafka transaction is the commit:
// a partition's changes are written after it with CommitNoSync, together
// with the partition's snapshot tag. A crash can lose a tail of unsynced
// batches but never part of one, and batches stay ordered, so the tag
// always names the changelog offset the stored state reflects.
//
// # Key encoding
//
// Keys are byte strings; "0" below is a 0x00 separator (ids never contain
// NUL), u32 and u64 are big-endian, and i64 is big-endian with the sign bit
// flipped so negative instants sort first.
//
// Global keys (not tied to an input partition):
//
//	'd' kind 0 spot 0 id [0 member]   a definition (kind = group, property,
//	                                   question, blacklist), raw JSON value
//	'x' name                          engine metadata: the clock, the
//	                                   instance id, the next outbox id of
//	                                   each partition, definitions positions
//	'z' spot 0 group 0 i64(minute) u32(partition)
//	                                  -> uvarint member count: the size
//	                                     series of a group (sizes.go),
//	                                     recorded by serve for the
//	                                     partitions it owns, kept 7 days;
//	                                     not partition state, never in the
//	                                     changelog
//
// Partition-scoped keys start with 'p' u32(partition), so that the state
// of one input partition can be iterated, dropped or rebuilt on its own:
//
//	'k' spot 0 member                 -> u32 ordinal of the member in the spot
//	'n' spot                          -> u32 next ordinal to allocate
//	'm' spot 0 u32(ord)               -> member state (binary, or JSON
//	                                     written by earlier versions)
//	'a' spot 0 u32(ord) type 0 i64(ts) u32(n) -> resource id, activity log
//	'i' spot 0 u32(ord) id            -> activity id seen (de-duplication)
//	'l' spot 0 term                   -> roaring bitmap of ordinals (posting
//	                                     list; term "g:<group>" is a smart
//	                                     group's membership set), merged
//	                                     deltas (posting.go); no longer
//	                                     written: the engine derives the
//	                                     lists in memory and deletes these
//	                                     when it loads a partition
//	's' spot 0 member 0 group         -> u64 last output seq of the key
//	                                     <spot>/<group>/<member> of an
//	                                     erased member; group is 0 resource
//	                                     for the access key
//	                                     <spot>/<resource>/<member>
//	't' i64(due) spot 0 u32(ord)      -> timer of earlier versions (the member
//	                                     state holds it; erasure deletes it)
//	'o' topic                         -> i64 next input offset to read
//	'e' u64(id)                       -> outbox entry not yet acknowledged
//	                                     (file mode; in serve only for the
//	                                     definitions pseudo-partition)
//	'c'                               -> i64 event clock the state reflects
//	'T'                               -> snapshot tag: i64 changelog offset
//	                                     the stored state reflects, i64
//	                                     Unix ms of that record (serve)
//	'G' spot 0 group                  -> fingerprint of the group definition
//	                                     this partition's memberships reflect
//	'B' spot 0 group 0 member         -> blacklist entry reflected here
//	'R' spot 0 group                  -> fingerprint of the resource list of
//	                                     the group this partition's access
//	                                     reflects
//	'h' spot 0 u32(ord) u64(n)        -> the member's membership
//	                                     transitions of one batch, the first
//	                                     numbered n (binary entries: op,
//	                                     reason, seq, ts, group, cause), the
//	                                     newest --history-per-member kept
//	'j' spot 0 u32(ord) group         -> i64 Unix ms the member joined the
//	                                     smart group (stores of the first
//	                                     history layout; now in the state)
//
// Ordinals are allocated per (partition, spot) and never reused, so posting
// lists are 32-bit roaring bitmaps. A live member's output sequence numbers
// are part of its state; when the member is erased they move to 's' keys
// and come back if the member reappears, so seq keeps increasing by one per
// output key. They hold no member data beyond the key.
//
// OpenSnapshot opens a store no process has open, read-only, for the
// export and inspect tools; Pebble's directory lock makes it fail with
// ErrInUse while an engine runs on it.
package state
