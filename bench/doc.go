// Package bench is the benchmark harness of smartgroups: a community
// generator, a naive baseline evaluator, the whole-pipeline measurements
// behind `smartgroups bench`, an optional PostgreSQL comparator, and Go
// micro-benchmarks of the record path's parts.
//
// # Data
//
// Community generates, deterministically for a seed, the records of a
// community: per spot, property and question schemas of every type, twenty
// static groups and smart groups spread over every trigger kind (tags,
// status, role, language, UTM, string matching, numbers, booleans, single
// and multi selects, form answers, activity counts with and without
// resources, group triggers on static and smart groups, not/any/all), a
// share of them (TimeShare, default 20%) with sliding time windows
// (within_last, more_than_ago). The operands of each group are drawn from
// a source of its own, so groups of one template differ as a real
// community's do (1,000 groups hold over 950 distinct rules). Members get
// one profile and one properties record (the initial load), whose
// last_activity_at follows each member's own activity rate, then a
// history: the same process as the live stream over the History (default
// 7 days) before it, so that counts and windows start in a steady state
// rather than in a one-time migration. Then a live stream of Events
// records: a member drawn with a power law (30% dormant, the rest Pareto
// α=1.5 capped at 1000×) does something — 85% activities of 14 types over
// Zipf-popular resources, 10% profile patches, 5% property or form
// updates; 1% of activities are producer retries, the member's own last
// activity sent again byte for byte. Tags, email domains, campaigns and
// interests are Zipf-distributed; statuses, roles, languages, plans and
// sizes follow fixed realistic weights. Live timestamps advance evenly
// over the 30 days before the run, so time windows slide during the
// replay. The whole input is written once to an NDJSON file in the
// `smartgroups process` line format; every mode reads those same records.
//
// # Method
//
// Run executes, on the same records and with the same clock (the event
// clock: now is the largest ts seen, so every mode evaluates the same
// rules at the same instants):
//
//  1. raw consume: a franz-go consumer reads the member topics from the
//     start and does nothing else (the input ceiling of the machine);
//  2. file mode: process.Run over the NDJSON files, timed over the live
//     stream's first ProcessEvents records (default 1M); its output is
//     counted by rule template of the group;
//  3. backfill: on the state file mode left, two group definitions are
//     applied with engine.Process, one whose rule the posting lists narrow
//     (a mid-popularity tag and a plan), one that no index narrows (an
//     email suffix), each timed from submission to durable commit;
//     members/s is the spot's member count divided by that time;
//  4. naive: Naive over the same files (decoders, compiled rules and
//     rule.Eval of the engine, every group of the spot on every record,
//     members in memory), timed over the live stream's first NaiveEvents
//     records (default 200k); it loads only the members that prefix
//     touches and evaluates each once before the timed part;
//  5. serve: `smartgroups serve` as a separate process (ServeCommand; in
//     this process when unset) on the pre-loaded topics with the event
//     clock and exactly-once output; throughput is member records divided
//     by the time from the first record consumed to the last output
//     transaction with record-caused events committed, read from /metrics
//     every 25 ms; events_per_record is its membership events per record;
//     serve_rss_bytes_per_member its process's peak RSS per member;
//     serve_last_tenth_over_first its records/s over the last tenth of the
//     stream divided by those over the first tenth (from the consumed
//     counter, interpolated between scrapes);
//  6. restore: with serve stopped, a serve on an empty data directory (the
//     same group, transactional ids, topics and broker) restores every
//     partition from the changelog; restore_seconds is from its start to
//     owning every member with no restore running and /readyz answering,
//     restore_members_per_sec the members / that time;
//     restart_restore_seconds the same for serve restarted on its data
//     directory (local snapshot and the changelog after it);
//  7. latency: serve restarted on the wall clock; once it has fired the
//     timers the jump from the event clock made overdue (its
//     smartgroups_timer_lag_seconds is 0; the time is
//     latency_timer_catchup_seconds), live records are offered at half the
//     measured serve throughput; each record's (spot,
//     member, ts) is matched with the first membership event carrying it,
//     read by a read_committed consumer; p50 and p99 over the records that
//     caused an event;
//  8. pipe ceiling: a franz-go job reads the live stream and, per 1,000
//     records, publishes events_per_record × 1,000 records of serve's mean
//     event size in one transaction: the I/O floor of this work, without
//     the engine;
//  9. optionally, PostgreSQL: the final member state is loaded into tables
//     and every group is recomputed with SQL.
//
// Repeat runs phases 1–8 (all but the backfill) that many times, each on
// fresh topics, consumer group and state, and reports the medians.
//
// Throughputs count live member records per second; definitions are
// excluded. Serve and the raw consumer read the whole live stream. Peak
// RSS is the process's VmHWM (the kernel mark is reset at each phase to
// report per-phase peaks as well); the embedded broker keeps its logs in
// files under the data directory (page cache, not RSS) unless
// BrokerInMemory. State bytes per member is the serve state directory's
// size after a clean shutdown, reopened and flushed (the write-ahead log
// replayed into tables), divided by the members.
//
// Resource figures depend on the system: on Linux, /proc gives the load
// average, the per-phase peak RSS and a local PostgreSQL server's CPU
// time, and getrusage the process's CPU time; on other Unix systems
// getrusage gives the CPU time and the process's peak RSS since it started
// (no per-phase peaks, no load average); elsewhere they are unknown and
// reported as zero.
//
// # Files
//
// community.go and community_records.go generate the community,
// pipe.go measures the pipe ceiling, final.go tallies output events and
// final memberships, serve_process.go runs serve as a process,
// dataset.go writes it as NDJSON; options.go holds Options; run.go is the
// runner (Run) with its first phases, generate, broker and produce; then
// one file per phase: consume.go (raw consume), process.go (file mode),
// backfill.go, naive.go (the naive evaluator and its phase), serve.go,
// restore.go, latency.go and postgres.go. metrics.go scrapes serve's /metrics,
// sizes.go measures state and broker sizes, report.go holds Result and
// prints it, and resources_*.go and rusage_*.go read the system's
// resource statistics.
package bench
