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
// (within_last, more_than_ago). Members get one profile and one properties
// record (the initial load), then a live stream of Events records: a member
// drawn with a power law (30% dormant, the rest Pareto α=1.5 capped at 1000×)
// does something — 85% activities of 14 types over Zipf-popular resources,
// 10% profile patches, 5% property or form updates. Tags, email domains,
// campaigns and interests are Zipf-distributed; statuses, roles, languages,
// plans and sizes follow fixed realistic weights. Live timestamps advance
// evenly over the 30 days before the run, so time windows slide during the
// replay. The whole input is written once to an NDJSON file in the
// `smartgroups process` line format; every mode reads those same records.
//
// # Method
//
// Run executes, in one process and on the same records:
//
//  1. raw consume: a franz-go consumer reads the member topics from the
//     start and does nothing else (the input ceiling of the machine);
//  2. file mode: process.Run over the NDJSON files, timed over the live
//     stream's first ProcessEvents records (default 1M);
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
//  5. serve: serve.Run in process on the pre-loaded topics with the event
//     clock and exactly-once output; throughput is member records divided
//     by the time from the first record consumed to the last output
//     transaction committed, both read from /metrics every 25 ms (and the
//     OnEvents hook);
//  6. latency: with serve caught up, live records are offered at half the
//     measured serve throughput; each record's (spot, member, ts) is
//     matched with the first membership event carrying it, read by a
//     read_committed consumer; p50 and p99 over the records that caused an
//     event;
//  7. optionally, PostgreSQL: the final member state is loaded into tables
//     and every group is recomputed with SQL.
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
// dataset.go writes it as NDJSON; options.go holds Options; run.go is the
// runner (Run) with its first phases, generate, broker and produce; then
// one file per phase: consume.go (raw consume), process.go (file mode),
// backfill.go, naive.go (the naive evaluator and its phase), serve.go,
// latency.go and postgres.go. metrics.go scrapes serve's /metrics,
// sizes.go measures state and broker sizes, report.go holds Result and
// prints it, and resources_*.go and rusage_*.go read the system's
// resource statistics.
package bench
