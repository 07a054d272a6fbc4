// Package serve runs the engine on Kafka: the implementation of
// `smartgroups serve` and of the engine part of `smartgroups demo`.
//
// # Lifecycle
//
// Run starts an embedded broker when no brokers are configured, creates
// missing topics and checks co-partitioning, claims its output topics in
// the owners topic, reads the changelog's delete.retention.ms, opens the
// state store (dropping it if it comes from another changelog topic), reads the definitions topic
// whole (from the position already applied), joins the consumer group of
// the member topics, then loops: poll a batch, apply it to the engine's
// memory, publish its output in one Kafka transaction per input partition
// (events, access changes, dead letters, the partition's changelog with
// the new input positions, a progress marker), then persist the batch's
// state changes to the store without sync, tagged with the changelog
// offset; fire due timers every tick. SIGINT/SIGTERM (context
// cancellation) finish the batch in flight, publish it (within
// publishGrace; past it the batch is dropped quietly: its records are
// read again by the next run), leave the group and close everything.
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
// The Kafka transaction is the commit. The store holds, per partition, a
// snapshot: a prefix of the committed changelog, written after each commit
// without fsync (Pebble batches are atomic and ordered, so a crash loses at
// most a tail of snapshots, never part of one), with a tag naming the last
// changelog offset it reflects. On assignment (and so on every start) an
// instance acquires the partition's producer, which fences any previous
// owner, then restores the partition: the snapshot and the changelog after
// its tag when the snapshot is younger than the changelog's
// delete.retention.ms (default one day), else the whole changelog over an
// empty state. Either way the state in memory is then the committed state,
// and the input positions come from it: a batch that never committed is
// read again, nothing is republished.
//
// A failed transaction is retried once when Recover shows that it did not
// commit and nobody else published the partition since; otherwise the
// error is fatal: the partition's state in memory is ahead of Kafka, so Run
// returns the error (the batch processed meanwhile is never published) and
// the process must be restarted (serve exits non-zero), which restores
// every partition from its snapshot and the changelog.
//
// # HTTP
//
// The --http listener serves the API (/v1), the admin console (every
// other path, package console, which calls the API in-process), /metrics,
// /healthz, /readyz and pprof. Every committed batch's membership changes
// are handed to the API's event stream (API.Publish) once published.
// sizes.go records every group's member count per owned partition once
// a minute (Config.SizeInterval) into the store's size series, which the
// API sums over instances.
//
// # Files
//
// config.go holds Config, its defaults and Validate; run.go starts an
// instance (embedded broker, topics, store, engine, clients) and loads the
// definitions; loop.go is the processing loop, the publication of each
// batch and its persistence; rebalance.go takes over partitions (restoring
// them from the snapshot and the changelog) and hands them back; http.go
// wires the HTTP API, the console, /metrics, the health endpoints and
// pprof; sizes.go samples group sizes; brokerhealth.go probes the brokers;
// owners.go claims the output topics
// for the deployment in the owners topic (refusing topics another
// deployment owns); changelogid.go drops a local state taken from a
// changelog topic that no longer exists (after a reset).
package serve
