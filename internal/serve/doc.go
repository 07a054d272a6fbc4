// Package serve runs the engine on Kafka: the implementation of
// `smartgroups serve` and of the engine part of `smartgroups demo`.
//
// # Lifecycle
//
// Run starts an embedded broker when no brokers are configured, creates
// missing topics and checks co-partitioning, opens the state store, reads
// the definitions topic whole (from the position already applied), joins
// the consumer group of the member topics, then loops: poll a batch,
// process it (one durable Pebble batch holding state, input positions and
// the outbox), publish the outbox in one Kafka transaction per input
// partition (events, dead letters, the partition's changelog and a progress
// marker), acknowledge it; fire due timers every tick. SIGINT/SIGTERM
// (context cancellation) finish the batch in flight, publish it, leave the
// group and close everything.
//
// # Exactly once
//
// Input positions live in the state store, committed with the state they
// produced, so a restart resumes exactly after the last committed batch.
// Each input partition has its own transactional producer; acquiring it on
// assignment fences any previous owner. Its progress marker names the
// instance (store) and outbox id last published: when it is ours, the
// outbox entries above it are published again (a crash between the Pebble
// commit and the Kafka commit); when it is another instance's, the
// partition's local state is stale, so it is dropped and restored from the
// changelog before processing resumes at the restored positions.
//
// # Files
//
// config.go holds Config, its defaults and Validate; run.go starts an
// instance (embedded broker, topics, store, engine, clients) and loads the
// definitions; loop.go is the processing loop and the publication of the
// outbox; rebalance.go takes over and hands back partitions (republishing
// or restoring from the changelog); http.go wires the HTTP API, /metrics,
// the health endpoints and pprof.
package serve
