// Package engine maintains smart-group memberships incrementally.
//
// # Model
//
// Input records (profiles, activities, properties, definitions; SPEC §4)
// are decoded and validated into typed changes. An invalid record is
// dead-lettered whole with a reason and changes nothing. A valid member
// record is applied to the member's state, and only the smart groups
// that can be affected are re-evaluated: the predicate index of each spot
// maps what changed ("p.tags", "c.<property>", "a.<activity type>", ...) to
// the groups whose compiled rules read it. Groups with a group trigger on a
// group that flipped are re-evaluated next, in dependency order. A change
// of eligibility (status) re-evaluates every group of the spot for that
// member only. Each flip becomes an output Event with a per-key seq.
//
// Definitions (groups, property and question schemas, blacklist entries)
// are global: every instance holds them all (Defs). Each input partition's
// state records which group definitions and blacklist entries its
// memberships reflect; reconciling a partition with the definitions
// backfills created or changed groups (members narrowed by posting lists,
// see below), empties deleted ones and applies blacklist changes. The same
// reconciliation runs when a partition is assigned, so definition changes
// that happened while a partition was elsewhere are applied exactly once.
//
// # Partition state in memory
//
// Assigning a partition (or finishing its restore) loads its state into
// memory with one scan of its keys (partload.go, partstate.go); revoking or
// dropping it drops that copy. Per spot: member ids in an open-addressing
// table over an id arena (idtable.go), each member's state as an immutable
// compact binary blob (state_binary.go) decoded on touch into a reused
// buffer, its activity log and the hashes of its activity ids; per
// partition: the applied group fingerprints, the reflected blacklist
// entries, the posting lists and the timer index (timerindex.go). Records,
// timers, reconciliation, backfills and queries read only this; the store
// is written as before (see Durability). A transaction changes
// ordinals, activity logs and timers as it goes and installs re-encoded
// member states and posting-list deltas after its commit.
//
// # Indexes
//
// Posting lists are roaring bitmaps of per-spot member ordinals, per
// partition: "*" (all members), "s:<status>", "r:<role>", "l:<language>",
// "t:<tag>", "sg:<static group>", "c:<property>=<value>",
// "f:<question>=<value>", "a:<activity type>", "a:<type>:<resource>" and
// "g:<smart group>" (the membership set); postings.go builds these terms.
// They are held in memory only, derived from the members when a partition
// is loaded.
// A backfill intersects and unions them following the rule tree and
// evaluates only the remaining candidates.
//
// # Time
//
// The clock (ClockFixed, ClockEvent, ClockWall) gives now. Rules with
// within_last or more_than_ago are time-dependent; for each eligible member
// the engine keeps ONE timer, at the earliest future instant at which one
// of those triggers changes value for that member (rule.NextFlip: for an
// activity trigger, where its count crosses its condition), in the
// partition's in-memory timer index (and the store's timer keys).
// Advancing the clock fires due timers through the same batch as the
// records (at most Config.MaxTimersPerBatch per batch; serve bounds it, so
// a restart fires overdue timers over a few batches); firing re-evaluates
// only the time groups with a trigger that changed since the timer was
// set (timers.go, fire). Nothing rescans all members on a clock tick.
//
// # Durability
//
// By default (process) one Process call is one Pebble batch, committed
// with Sync: member state, timers, per-key seqs, input positions and an
// outbox entry holding the batch's events and dead letters. A runtime
// publishes the outbox and acknowledges it with Ack; Pending returns what a
// crash left unpublished.
//
// With Config.DeferPartitionWrites (serve) the runtime's Kafka transaction
// is the commit: Process applies a batch to memory and returns its
// output and, per partition, its changelog (every partition-scoped write,
// input positions included), writing to the store only global keys
// (definitions, their position, the definitions outbox) without sync.
// Once the output committed, Persist writes the changes without sync with
// the partition's snapshot tag (persist.go); until then the few store keys
// a transaction reads (activity ids) are read from the batches not yet
// persisted. Snapshot and RestorePartition bring a partition back from the
// stored snapshot and the changelog after its tag.
//
// Process returns an error only for storage failures, after which the
// Engine must be reopened.
// # Where things are
//
// The rule language (parsing, compiling, evaluating, time triggers, the
// member data model) is package engine/rule; engine/internal/jsonscan is
// the JSON scanner the decoders use. In this package: records.go (input
// records, output events), deadletter.go (why a record is dead-lettered),
// decode_member.go, decode_profile.go and decode_definition.go (record
// decoding), catalog.go (the definitions of every spot), engine.go (the
// Engine, its Config and Process), txn.go (one batch), apply.go (applying
// a member record), member.go and state*.go (a member, its state and the
// binary and legacy JSON codecs), partstate.go, partload.go, idtable.go
// and timerindex.go (a partition's state in memory), postings.go
// (posting-list terms and the candidate planner), timers.go, reconcile.go
// and backfill.go (definition changes), query.go (read-only queries),
// partition.go (dropping and restoring partitions), persist.go (deferred
// partition writes and snapshot tags), outbox_codec.go (what the outbox
// stores), resources.go (groups' linked resources), access.go (access per
// member and resource: grants, revokes, resource-list reconciliation) and
// access_query.go (access queries and dry runs), history.go (the
// membership history: one key per member per batch in the store and the
// changelog beside the member, whose state lists the keys and holds the
// since instants), memberinfo.go
// (everything about one member, for the API and inspect) and offline.go
// (StateReader: export and inspect of a stopped store).
package engine
