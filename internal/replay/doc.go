// Package replay implements `smartgroups replay`: the engine run over the
// input topics of a deployment from their start up to their end offsets
// as of the start of the replay, into a fresh state, writing the changes
// to an output topic (in Kafka transactions) or files, without touching
// anything live.
//
// # Model
//
// A replay joins no consumer group: one reader per input partition
// (profiles, activities, properties, definitions) fetches read_committed
// from the log start to the partition's end offset captured at the start
// (kafka.Ranges, kafka.ReadRange). The partitions are merged by record
// timestamp (within a partition, offset order is kept; equal timestamps:
// definitions first, then topic, partition, offset) into ONE stream, fed
// to the engine of `process` (process.RunSource): a single state
// partition, the event clock, one synced batch per BatchSize records. So a
// replay's output equals `process` over the same records in the merged
// order, byte for byte (the dead letters name the topic, partition and
// offset each record had).
//
// The events whose ts is before EmitFrom are computed (the state needs the
// whole history) but not written. The output topic must be new or empty,
// must not be a topic of the replayed deployment, and is claimed in the
// owners topic (kafka.Owners) as a replay's: `serve` refuses to publish
// into it, and a replay refuses any topic another deployment or replay
// owns. Each engine batch's kept output is one Kafka transaction.
//
// # Backtests
//
// Config.Definitions names an NDJSON file of definitions lines. They are
// applied before any topic record, and the definitions topic's records
// with the same keys are skipped, so the file's groups are in force over
// the whole history ("how would this rule have done over the last 90
// days?"). A line the engine refuses at the start (it references a schema
// declared later, say) is tried again right after every later
// definitions record of the topic (whatever the batch size); only a line
// still refused at the end is dead-lettered.
package replay
