package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/smartgroups/smartgroups/connectors/kafka"
	"github.com/smartgroups/smartgroups/internal/reset"
)

// errResetNotConfirmed is returned by reset without --yes, after the plan.
var errResetNotConfirmed = errors.New("reset: nothing was deleted; run again with --yes to delete the above")

func newResetCmd() *cobra.Command {
	cfg := reset.Config{Kafka: kafka.DefaultConfig()}
	var (
		brokers string
		yes     bool
	)
	cmd := &cobra.Command{
		Use:   "reset --brokers B --group-id G [--topic-prefix P] [--data-dir D] --yes",
		Short: "Make a stopped deployment rebuild its state from its input topics",
		Long: `Deletes the state of a stopped deployment so that its next start rebuilds
it from the beginning of its input topics: its changelog and progress topics
(<prefix>changelog, <prefix>progress), its consumer group (--group-id), its
claim on its output topics in --owners-topic and, with --data-dir, that
instance's local state (<data-dir>/state; the embedded broker's data in
<data-dir>/broker is kept). --delete-outputs also deletes <prefix>memberships
and <prefix>access, so that the rebuild writes them anew. The input topics
and the dead-letter topic are never touched.

Without --yes it prints what it would delete and exits non-zero.

It refuses while the deployment runs: the instances are static members of
the consumer group, so reset removes those members (a killed instance stays
a member for the session timeout) and watches the group for --live-wait; a
running instance joins again, and reset stops, naming it, having deleted
nothing. (The running deployment sees a rebalance.)

Without --brokers, --data-dir is that of a serve that ran with its embedded
broker: reset opens that broker (it must not be running) to reset it.

Consumer-group offset tools (kafka-consumer-groups --reset-offsets) have no
effect on a deployment: its input positions live in its state and changelog.
An instance whose data dir was not reset drops its local state at start
(its changelog topic is gone) and rebuilds too.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			cfg.Kafka.Brokers = brokerList(brokers)
			if len(cfg.Kafka.Brokers) == 0 {
				if cfg.DataDir == "" {
					return errors.New("reset: --brokers is required (or --data-dir of a serve that ran with its embedded broker)")
				}
				brokerDir := filepath.Join(cfg.DataDir, "broker")
				if _, err := os.Stat(brokerDir); err != nil {
					return fmt.Errorf("reset: no --brokers, and %s holds no embedded broker: %w", cfg.DataDir, err)
				}
				// The broker's data must not be open in a running serve.
				if err := reset.CheckStateUnused(cfg.DataDir); err != nil {
					return err
				}
				emb, err := kafka.StartEmbedded(kafka.EmbeddedConfig{Addr: "127.0.0.1:0", DataDir: brokerDir})
				if err != nil {
					return fmt.Errorf("reset: opening the embedded broker of %s: %w", cfg.DataDir, err)
				}
				defer func() { _ = emb.Close() }()
				cfg.Kafka.Brokers = []string{emb.Addr()}
				_, _ = fmt.Fprintf(out, "opened the embedded broker of %s\n", cfg.DataDir)
			}
			r, err := reset.New(cfg)
			if err != nil {
				return err
			}
			defer r.Close()
			plan, err := r.Inspect(cmd.Context())
			if err != nil {
				return err
			}
			if !yes {
				_, _ = fmt.Fprintf(out, "reset would delete (topic prefix %q, group %q):\n", cfg.Kafka.TopicPrefix, cfg.Kafka.GroupID)
				plan.Print(out)
				return errResetNotConfirmed
			}
			if err := r.Execute(cmd.Context(), plan, out); err != nil {
				return err
			}
			_, _ = fmt.Fprintf(out, "reset done: the next start of the deployment rebuilds its state from its input topics\n")
			return nil
		},
	}
	f := cmd.Flags()
	addKafkaClientFlags(f, &cfg.Kafka, &brokers)
	f.Lookup("brokers").Usage = "Kafka seed brokers, comma-separated (empty: open the embedded broker in --data-dir, with its serve stopped)"
	f.StringVar(&cfg.Kafka.GroupID, "group-id", cfg.Kafka.GroupID, "consumer group of the deployment")
	f.StringVar(&cfg.Kafka.TransactionalIDPrefix, "transactional-id-prefix", cfg.Kafka.TransactionalIDPrefix, "transactional id prefix of the deployment (identifies its claim on its output topics)")
	f.StringVar(&cfg.DataDir, "data-dir", "", "an instance's data dir whose local state to delete")
	f.BoolVar(&cfg.DeleteOutputs, "delete-outputs", false, "also delete the memberships and access topics")
	f.DurationVar(&cfg.LiveWait, "live-wait", 10*time.Second, "how long to watch the group for a running instance after removing its static members")
	f.BoolVar(&yes, "yes", false, "delete; without it, only print what would be deleted")
	return cmd
}
