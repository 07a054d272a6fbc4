// Package e2e holds the end-to-end tests of `smartgroups serve`: the real
// binary, run as subprocesses against a Kafka broker, killed and restarted
// while input flows, and checked against the naive reference evaluator.
//
// # Harness
//
// TestMain builds the binary once. Each test gets a broker: the one named by
// KAFKA_BROKERS (a real Apache Kafka, see scripts/kafka), or an embedded
// Kafka-compatible broker (kfake) started in the test process with a data
// dir, so that it outlives the serve processes the test kills. Every test
// uses its own topic prefix, consumer group and transactional id prefix, so
// tests can share a real broker and run in parallel.
//
// A serve process runs with --clock event and --partitions 4, its output in
// a log file per run (its tail is printed when a test fails). Waits are
// bounded by deadlines and fail with diagnostics (log tails, /metrics lag);
// no test asserts on elapsed wall-clock time.
//
// # Workload and oracle
//
// Kafka orders records per partition only, so the workload is built to have
// final memberships that do not depend on the order across topics and
// partitions: all definitions (schemas, static and smart groups of every
// trigger kind, nested group triggers, time windows, blacklist entries) are
// produced before serve starts, then member records that are valid in any
// order (no erasures, property values that fit their declared types), with
// a sprinkle of records that are invalid in any order (bad JSON, key
// mismatch, unknown activity type, a value of the wrong type). Record
// timestamps come from a synthetic clock advancing per record, so the event
// clock is deterministic. The expected memberships come from
// internal/reference fed the definitions, then every member record; its
// clock ends at the largest ts. The event clock is per instance
// (docs/decisions.md), so every batch ends with records at one later
// instant on every partition: whatever partitions an instance owns, its
// clock ends at the same largest ts.
//
// Every batch of the workload ends with one invalid "sentinel" record per
// member topic and partition. Dead letters are published in the same
// transaction as the batch that produced them, so once the dead-letter
// topic holds exactly the expected number of dead letters, every input
// partition was processed to its end and its output committed: that is how
// a test knows serve caught up, without trusting timing.
//
// # What is checked
//
// Reading the memberships topic read_committed from the start, per key:
// seq starts at 1 and increases by one, ops alternate starting with add
// (no duplicate, no lost transition), the record key is the event's key,
// and every event of a key is in the partition its key hashes to. The last
// op per key gives the final membership set, which must equal the
// reference's. Dead letters are checked for exactly-once too: one per
// invalid input record, never two for the same input offset.
//
// # Data-engineer tools
//
// tools_test.go runs `replay`, `reset` and the output guard as a user
// does. The replay tests run against the embedded broker of a running
// `serve` (serve started without --brokers; with KAFKA_BROKERS, the real
// broker): records are produced with increasing record timestamps, so
// the replay's merge order is the production order, and the expected
// output is `process` (in-process) over the same lines, compared byte for
// byte with the replay's files and event for event with its output
// topic. The backtest checks that the live topics' end offsets do not
// move. The reset test kills serve (a static member stays in the group),
// resets, restarts and checks that the events published after the
// restart form a fresh history ending in the reference memberships.
//
// # Running
//
//	go test -race -count=1 ./internal/e2e/                 # embedded broker
//	eval "$(scripts/kafka/start.sh)"                         # a real Kafka
//	KAFKA_BROKERS=$KAFKA_BROKERS go test -race -count=1 ./internal/e2e/
//
// The tests run in parallel (-test.parallel defaults to 8 here: they mostly
// wait) and take about two and a half minutes; -short skips them. Knobs:
//
//	KAFKA_BROKERS    use this broker instead of an embedded one per test
//	E2E_SEED         seed of every test's workload and kill moments
//	E2E_KILLS        number of kills of TestCrashKill9 (default 5)
//	E2E_KILL_MODES   its kill schedule, e.g. processing,startup,joining
//	E2E_RACE=1       build serve with -race too
//	E2E_KEEP=1       keep every test's logs and data dirs (paths are logged)
//	E2E_KNOWN_BUGS=1 run the tests of reported, unfixed bugs
//	E2E_OWN_KAFKA=1  run TestBrokerKill9 without KAFKA_BROKERS
//
// TestBrokerKill9 kills the broker itself: it starts an Apache Kafka of its
// own with scripts/kafka (free ports, a data dir of its own, never the
// KAFKA_BROKERS one), so it runs only when Kafka is installed
// (scripts/kafka/install.sh) and KAFKA_BROKERS or E2E_OWN_KAFKA=1 is set.
//
// A failed test sends SIGQUIT to its running serve processes before it
// kills them: their goroutine stacks end their run's log.
//
// On a real broker a failed test leaves its topics for inspection; a passing
// one deletes them.
package e2e
