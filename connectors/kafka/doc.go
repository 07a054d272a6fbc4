// Package kafka is the Kafka runtime of smartgroups: topic setup, the input
// consumer, the exactly-once output publisher, an embedded broker and their
// metrics, built on franz-go (kgo). It depends on the engine only for the
// Record, Event and DeadLetter types.
//
// # Topics
//
// With the default prefix "smartgroups." (Config.TopicPrefix), EnsureTopics
// creates what is missing and checks the layout (see TopicSpecs):
//
//	smartgroups.profiles     N partitions  delete   input, keyed <spot>/<member>
//	smartgroups.activities   N partitions  delete   input, keyed <spot>/<member>
//	smartgroups.properties   N partitions  delete   input, keyed <spot>/<member>
//	smartgroups.definitions  1 partition   compact  input, read whole by every instance
//	smartgroups.memberships  N partitions  compact  output events, keyed <spot>/<group>/<member>
//	smartgroups.access       N partitions  compact  access events, keyed <spot>/<resource>/<member>,
//	                                                in the transactions of the memberships
//	smartgroups.deadletter   N partitions  delete   dead letters, keyed by the original key
//	smartgroups.progress     N partitions  compact  progress markers, partition P for input partition P
//	smartgroups.changelog    N partitions  compact  state changes, partition P for input partition P
//
// The three member topics must be co-partitioned; CheckTopics refuses to
// start otherwise and names every topic with its partition count.
//
// # Owners
//
// One more topic is shared by every deployment of a cluster, whatever its
// prefix: Config.OwnersTopic (default smartgroups.owners, one partition,
// compacted). Owners records in it which deployment (group id and
// transactional id prefix, or a replay's transactional id) owns which
// output topic, keyed by the topic's name, with the topic's id so that a
// claim on a deleted or recreated topic no longer counts. Claim refuses a
// topic owned by someone else (an *OwnedError naming the owner) unless
// told to take it over.
//
// # Bounded reads
//
// Ranges and ReadRange read topic partitions read_committed from their
// start up to the end offsets listed at one instant, without a consumer
// group (for replays).
//
// # Exactly once
//
// The Kafka transaction is the commit (Kafka Streams' exactly-once v2
// pattern, with one producer per input partition). The engine applies a
// batch to memory; Publisher.Publish then writes, in ONE Kafka transaction
// per input partition P, the batch's events, dead letters, P's state
// changes (the changelog, which includes the new input positions) and a
// progress marker, and returns once it committed, with the offset of the
// last changelog record. Only then does the runtime persist the state
// changes locally, without fsync, tagged with that offset. Every produce
// result is checked before committing, because kgo would otherwise
// commit the records that did succeed.
//
// Publisher.Acquire(P), on start or when P is assigned, initializes P's
// transactional producer (transactional id <prefix>P). That fences any
// other instance still publishing P and aborts its open transaction; from
// then on nothing can commit to P's changelog behind the new owner, which
// restores P: its local snapshot and the changelog after the snapshot's
// tag (ChangelogEnd, ReadChangelog from an offset, read_committed), or the
// whole changelog. The input positions come from the restored state:
// input whose batch never committed is simply read again, and nothing is
// ever republished.
//
// The progress marker (<prefix>progress partition P) names the instance,
// the Publisher's run and the batch id of P's last transaction. The
// runtime logs who published a partition it restores, Recover uses it to
// tell whether a transaction whose commit failed went through, and the
// definitions pseudo-partition uses it to de-duplicate dead letters of
// definition records (engine.DefPartition, -1: transactional id
// <prefix>definitions, markers in progress partition 0, ids that are
// definitions offsets; one instance should own it).
//
// A crash anywhere leaves each transaction either committed (its events,
// changelog and positions all visible to read_committed consumers) or
// aborted (none of them visible, and the input is read again), so each
// event is visible exactly once. The Consumer never commits offsets to
// the group and seeks to the positions the runtime returns from
// ConsumerHooks.OnAssigned.
//
// # Lifecycle
//
// Open:
//
//	cfg := kafka.DefaultConfig()            // then set Brokers, TLS, SASL...
//	err := cfg.Validate()
//	err = kafka.EnsureTopics(ctx, kadm.NewClient(cl), cfg)
//	pub, err := kafka.NewPublisher(cfg, instanceID, metrics)
//	cons, err := kafka.NewConsumer(cfg, kafka.ConsumerHooks{
//		OnAssigned: func(ctx, assigned) (offsets, error) {
//			// for each input partition P: pub.Acquire(ctx, P), then
//			// restore P from the local snapshot and pub.ReadChangelog
//			// after its tag; return the restored positions
//		},
//		OnRevoked: func(ctx, revoked) { /* pub.Release(P), drop P's state */ },
//	}, metrics)
//	defs, err := cons.ReadDefinitions(ctx) // the whole definitions table
//
// Read a batch, apply, publish, persist, repeat:
//
//	for {
//		recs, err := cons.Poll(ctx, 10000) // definitions and member records
//		// engine: apply to memory
//		c, err := pub.Publish(ctx, kafka.Batch{Partition: P, Events: ..., Changelog: ..., OutboxID: n})
//		// engine: persist batch n of P, tagged c.ChangelogOffset
//	}
//
// A batch returned by Poll is owned until the next Poll: rebalances, and so
// the hooks, run only while Poll waits (or after AllowRebalance). Hooks run
// on the group's goroutine and must not call Close; the runtime never ends a
// transaction from a hook. If Publish fails, the partition's producer is
// dropped: Recover acquires it again and says whether the batch committed,
// did not (publish it again), or another publisher wrote meanwhile.
//
// Close: Consumer.Close stops the group membership (running OnRevoked),
// then Publisher.Close. Both are idempotent. With Config.InstanceID the
// Consumer is a static member: Close keeps its place in the group, so a
// restart with the same id gets its partitions back without a rebalance;
// Consumer.Leave removes it for good, so the others get them at once.
//
// # Embedded broker
//
// Embedded runs a kfake cluster in the process (SPEC §5: serve without
// --brokers, and demo). kfake in the version this module uses supports
// consumer groups, idempotent and transactional producers, read_committed
// fetches, log compaction (Embedded.Compact, or every
// log.cleaner.backoff.ms, default one hour) and persistence under a data
// directory (kfake.DataDir; on restart after a crash, transactions that were
// open are aborted).
package kafka
