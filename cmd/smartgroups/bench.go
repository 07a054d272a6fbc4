package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/smartgroups/smartgroups/bench"
)

func newBenchCmd() *cobra.Command {
	o := bench.DefaultOptions()
	var (
		brokers string
		quick   bool
		jsonOut bool
		clock   string
		inProc  bool
	)
	cmd := &cobra.Command{
		Use:   "bench [--quick] [--json] [--members N --groups N --events N]",
		Short: "Measure throughput, latency, backfill and memory on a generated community",
		Long: `Generates a community (power-law activity per member, realistic tags and
properties, smart groups of every trigger kind, a share with time windows),
loads it into Kafka (an embedded in-memory broker unless --brokers is set) and
measures, on the same records: a raw franz-go consumer (the input ceiling),
serve end to end with exactly-once output, file mode, a naive evaluator that
re-evaluates every group on every record, produce-to-visible latency at half
the measured serve throughput, the backfill of a new group (index-narrowed
and full scan), peak RSS and state size per member, serve's throughput over
the last tenth of the live stream against the first
(serve_last_tenth_over_first), and how long a new serve on an empty data
dir takes to restore every partition from the changelog once serve has
stopped (restore_seconds, restore_members_per_sec) and serve restarted on
its data dir (restart_restore_seconds).

Every mode evaluates the same records at the same instants: serve runs on
the event clock in the throughput phases, like file mode and the naive
evaluator (the latency phase restarts it on the wall clock). serve runs as
a separate smartgroups serve process, so serve_rss_bytes_per_member is its
own. pipe_ceiling_events_per_sec is a franz-go job that reads the live
stream and publishes events_per_record events per record in transactions:
the I/O floor of the work. --repeat N runs the throughput phases N times
and reports the medians.

--json prints one JSON object as the last line of stdout (the table then
goes to stderr). --quick uses a small community that runs in under three
minutes on two cores. --postgres DSN also runs the PostgreSQL comparator
(see scripts/postgres/start.sh). Progress goes to stderr.

Serve and the raw consumer read the whole live stream. The naive evaluator
(every group on every record) and file mode are timed over a prefix of it,
by default its first 200,000 and 1,000,000 records (--naive-events,
--process-events); the table says which.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if quick {
				q := bench.QuickOptions()
				f := cmd.Flags()
				if !f.Changed("members") {
					o.Community.Members = q.Community.Members
				}
				if !f.Changed("groups") {
					o.Community.Groups = q.Community.Groups
				}
				if !f.Changed("events") {
					o.Community.Events = q.Community.Events
				}
				if !f.Changed("latency-duration") {
					o.LatencyDuration = q.LatencyDuration
				}
			}
			o.Brokers = brokerList(brokers)
			if err := o.Community.Validate(); err != nil {
				return err
			}
			serveClock, err := clockMode(clock)
			if err != nil {
				return err
			}
			o.ServeClock = serveClock
			if !inProc && o.CPUProfile == "" && o.MemProfile == "" && o.LoadCPUProfile == "" {
				// serve in its own process, so that its memory is its own.
				exe, err := os.Executable()
				if err != nil {
					return fmt.Errorf("bench: the smartgroups binary to run serve: %w", err)
				}
				o.ServeCommand = []string{exe}
			}
			o.Log = cmd.ErrOrStderr()
			res, err := bench.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			if jsonOut {
				if err := res.WriteTable(cmd.ErrOrStderr()); err != nil {
					return err
				}
				return res.WriteJSON(cmd.OutOrStdout())
			}
			return res.WriteTable(cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Community.Members, "members", o.Community.Members, "members over all spots")
	f.IntVar(&o.Community.Groups, "groups", o.Community.Groups, "smart groups over all spots")
	f.IntVar(&o.Community.Events, "events", o.Community.Events, "live records after the initial load (one profile and one properties record per member)")
	f.IntVar(&o.Community.Spots, "spots", o.Community.Spots, "spots (tenants); members and groups are split evenly")
	f.Float64Var(&o.Community.TimeShare, "time-share", o.Community.TimeShare, "share of smart groups with a sliding time window (negative: none)")
	f.Uint64Var(&o.Community.Seed, "seed", o.Community.Seed, "seed of the generated community")
	f.StringVar(&brokers, "brokers", "", "Kafka seed brokers, comma-separated (empty: an embedded in-memory broker)")
	f.StringVar(&o.DataDir, "data-dir", "", "directory for the input file and state stores (default: a temporary directory, removed at exit)")
	f.Int32Var(&o.Partitions, "partitions", o.Partitions, "partitions of the member topics")
	f.IntVar(&o.BatchSize, "batch-size", o.BatchSize, "most input records per committed batch (serve and file mode)")
	f.DurationVar(&o.LatencyDuration, "latency-duration", o.LatencyDuration, "how long the fixed-load latency phase offers records")
	f.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the serve throughput phase (live stream) to this file")
	f.StringVar(&o.MemProfile, "memprofile", "", "write a heap profile to this file when serve has caught up with the live stream")
	f.StringVar(&o.ProcessCPUProfile, "cpuprofile-process", "", "write a CPU profile of file mode's live phase to this file")
	f.StringVar(&o.LoadCPUProfile, "cpuprofile-load", "", "write a CPU profile of serve's initial load (definitions bootstrap and initial-load records) to this file")
	f.BoolVar(&o.ServeOnly, "serve-only", false, "skip file mode, the backfill and the naive evaluator (to measure serve alone at large sizes; their numbers are then zero)")
	f.BoolVar(&o.LoadOnly, "load-only", false, "stop after serve's initial load (to time or profile it alone; the live-stream numbers are then zero)")
	f.IntVar(&o.NaiveEvents, "naive-events", 0, fmt.Sprintf("time the naive evaluator over the first N live records (0: min(events, %d); -1: all)", bench.DefaultNaiveEvents))
	f.IntVar(&o.ProcessEvents, "process-events", 0, fmt.Sprintf("time file mode over the first N live records (0: min(events, %d); -1: all); serve and raw consume always read them all", bench.DefaultProcessEvents))
	f.BoolVar(&o.BrokerInMemory, "broker-in-memory", false, "keep the embedded broker's logs in memory (default: files under the data dir, not fsynced)")
	f.Int64Var(&o.StateCacheBytes, "state-cache-bytes", 0, "serve's Pebble block cache in bytes (0: serve's default)")
	f.StringVar(&o.Postgres, "postgres", "", "PostgreSQL DSN: also load the community into PostgreSQL and time SQL recomputing every group")
	f.StringVar(&clock, "clock", "event", "serve's clock in the throughput phases: event (default: the clock of file mode and of the naive evaluator, so every mode does the same work) or wall; the latency phase always uses the wall clock")
	f.IntVar(&o.Repeat, "repeat", 1, "run the throughput phases N times on fresh topics and state and report the medians")
	f.BoolVar(&inProc, "serve-in-process", false, "run serve inside the benchmark's process (default: a separate smartgroups serve process, whose peak RSS is its own; the profiles need it in process)")
	f.BoolVar(&quick, "quick", false, "small community (5k members, 200 groups, 20k live events, 8s latency phase)")
	f.BoolVar(&jsonOut, "json", false, "print one JSON object as the last line of stdout (the table goes to stderr)")
	return cmd
}
