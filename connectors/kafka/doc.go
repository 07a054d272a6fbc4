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
//
// The three member topics must be co-partitioned; CheckTopics refuses to
// start otherwise and names every topic with its partition count.
//
// # Exactly once
//
// The engine commits its state, its input positions and an outbox of the
// events and dead letters it produced to Pebble, atomically per batch. Each
// outbox entry has an id that increases per input partition. Publishing
// then follows the "progress topic" pattern:
//
//   - Publisher.Publish writes a batch of outbox entries of input
//     partition P and the marker "P is published through outbox id N" (to
//     progress partition P) in ONE Kafka transaction, and returns once it
//     committed. Every produce result is checked before committing, because
//     kgo would otherwise commit the records that did succeed.
//   - Publisher.Acquire(P), on start or when P is assigned, initializes P's
//     transactional producer (transactional id <prefix>P). That fences any
//     other instance still publishing P and aborts its open transaction.
//     Only then does it read P's progress, read_committed, and return N. The
//     engine republishes its outbox entries above N and can drop those at or
//     below it.
//
// Dead letters of definition records belong to the pseudo-partition
// engine.DefPartition (-1), published the same way (transactional id
// <prefix>definitions, markers in progress partition 0); one instance
// should own it.
//
// A crash anywhere leaves either the transaction committed (the marker says
// so) or aborted (its records are invisible to read_committed consumers and
// the entries are republished), so each event is visible exactly once.
// Input positions come from Pebble, not from consumer-group commits: the
// Consumer never commits offsets and seeks to the positions the engine
// returns from ConsumerHooks.OnAssigned.
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
//			// for each input partition P: marker, err := pub.Acquire(ctx, P);
//			// this instance's marker: republish outbox entries above
//			// marker.OutboxID; another instance's: restore P from
//			// pub.ReadChangelog; return the positions stored in Pebble
//		},
//		OnRevoked: func(ctx, revoked) { /* pub.Release(P), drop P's state */ },
//	}, metrics)
//	defs, err := cons.ReadDefinitions(ctx) // the whole definitions table
//
// Read a batch, commit, publish, repeat:
//
//	for {
//		recs, err := cons.Poll(ctx, 10000) // definitions and member records
//		// engine: apply, then commit state + positions + outbox to Pebble
//		err = pub.Publish(ctx, kafka.Batch{Partition: P, Events: ..., DeadLetters: ..., OutboxID: n})
//		// engine: ack outbox entries <= n
//	}
//
// A batch returned by Poll is owned until the next Poll: rebalances, and so
// the hooks, run only while Poll waits (or after AllowRebalance). Hooks run
// on the group's goroutine and must not call Close; the runtime never ends a
// transaction from a hook. If Publish fails, the partition's producer is
// dropped: call Acquire again, which fences, reports what was committed, and
// lets the engine republish.
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
