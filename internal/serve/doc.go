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
// (context cancellation) finish the batch in flight, publish it (within
// publishGrace; past it the entries stay in the outbox for the next run),
// leave the group and close everything.
//
// The consumer is a static group member: its group.instance.id derives
// from the instance id kept in the store, so a run restarted on the same
// data dir after a crash gets its partitions back at once. Because a
// static member does not leave the group when its client closes, a
// stopping instance removes itself explicitly (kafka.Consumer.Leave).
//
// # Faults
//
// A failed write to the state store (state.ErrFailed: a full disk, an I/O
// error) is fatal: /readyz answers 503, one error naming the data dir is
// logged, and Run returns it. Kafka being unreachable is not: a probe
// (brokerhealth.go) turns /readyz to 503 and logs one error per outage;
// polls and publications wait and retry until Kafka answers, then
// processing resumes.
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
// the health endpoints and pprof; brokerhealth.go probes the brokers.
package serve
