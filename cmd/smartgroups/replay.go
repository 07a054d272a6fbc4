package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/smartgroups/smartgroups/connectors/kafka"
	"github.com/smartgroups/smartgroups/engine/rule"
	"github.com/smartgroups/smartgroups/internal/replay"
)

// addKafkaClientFlags binds the flags of a tool that talks to an existing
// cluster: brokers, topic prefix, owners topic, TLS and SASL.
func addKafkaClientFlags(f *pflag.FlagSet, kc *kafka.Config, brokers *string) {
	f.StringVar(brokers, "brokers", "", "Kafka seed brokers, comma-separated (required; a running serve's embedded broker listens on 127.0.0.1:9092 by default)")
	f.StringVar(&kc.TopicPrefix, "topic-prefix", kc.TopicPrefix, "prefix of the deployment's topic names")
	f.StringVar(&kc.OwnersTopic, "owners-topic", kc.OwnersTopic, "compacted topic recording which deployment owns which output topic (the same for every deployment of a cluster)")
	f.BoolVar(&kc.TLS.Enable, "tls", false, "connect to Kafka with TLS")
	f.StringVar(&kc.TLS.CAFile, "tls-ca", "", "CA certificate file (PEM)")
	f.StringVar(&kc.TLS.CertFile, "tls-cert", "", "client certificate file (PEM)")
	f.StringVar(&kc.TLS.KeyFile, "tls-key", "", "client key file (PEM)")
	f.StringVar(&kc.TLS.ServerName, "tls-server-name", "", "server name to verify")
	f.BoolVar(&kc.TLS.InsecureSkipVerify, "tls-insecure-skip-verify", false, "do not verify the broker certificate")
	f.StringVar(&kc.SASL.Mechanism, "sasl-mechanism", "", "SASL mechanism: plain, scram-sha-256 or scram-sha-512")
	f.StringVar(&kc.SASL.User, "sasl-user", "", "SASL user")
	f.StringVar(&kc.SASL.Password, "sasl-password", "", "SASL password (prefer SMARTGROUPS_SASL_PASSWORD)")
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func newReplayCmd() *cobra.Command {
	cfg := replay.DefaultConfig()
	var (
		brokers, emitFrom string
		asJSON            bool
	)
	cmd := &cobra.Command{
		Use:   "replay --brokers B [--emit-from T] [--output-topic T] [--output-file F] [--definitions F]",
		Short: "Recompute the memberships from the beginning of the input topics, without touching anything live",
		Long: `Runs the engine over the member and definitions topics of a deployment
(--topic-prefix), from their beginning up to their end offsets as of the
start, into a fresh state, and exits with a summary (--json: one object).
It joins no consumer group and writes nothing to the deployment's topics.

Records are merged across topics and partitions by record timestamp (offset
order within a partition) and applied like ` + "`process`" + ` applies a file:
one state, the event clock, so the output equals ` + "`process`" + ` over the
same records in that order.

Output, any of:
  --output-topic T         membership events, in Kafka transactions (exactly
                           once for read_committed consumers); T must be new
                           or empty, not a topic of the deployment, and not
                           owned by another deployment (--owners-topic)
  --access-output-topic T  access events (grant/revoke), in the same
                           transactions
  --output-file F          membership events as NDJSON, as process writes them
  --access-output-file F   access events as NDJSON
  --deadletter F           dead letters as NDJSON (default: only counted)
Without any, the replay only counts.

--emit-from T writes only the events whose ts is at or after T (RFC 3339 or
epoch milliseconds); the state is still built from the whole history.

--definitions F is a backtest: NDJSON lines of definitions (as process reads
them) applied before everything else; the definitions topic's records with
the same keys are skipped. "How would this new or changed group have
evolved over the last 90 days?":
  smartgroups replay --brokers kafka:9092 --definitions new-rule.ndjson \
    --emit-from 2026-09-01T00:00:00Z --output-file backtest.ndjson

A progress line (records/s, % done, ETA) goes to stderr when it is a
terminal.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Kafka.Brokers = brokerList(brokers)
			if len(cfg.Kafka.Brokers) == 0 {
				return errors.New("replay: --brokers is required (a running serve's embedded broker listens on 127.0.0.1:9092 by default)")
			}
			if err := checkLimits(cfg.Limits); err != nil {
				return err
			}
			if emitFrom != "" {
				t, err := rule.ParseTime(emitFrom)
				if err != nil {
					return fmt.Errorf("--emit-from: %w", err)
				}
				cfg.EmitFrom, cfg.HasEmitFrom = t, true
			}
			if isTerminal(os.Stderr) {
				cfg.Progress = os.Stderr
			}
			cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
			sum, err := replay.Run(cmd.Context(), cfg)
			if err != nil {
				if v, ok := os.LookupEnv(envName("data-dir")); ok && v != "" && v == cfg.DataDir {
					err = fmt.Errorf("%w (--data-dir comes from %s)", err, envName("data-dir"))
				}
				return err
			}
			return printSummary(cmd.OutOrStdout(), cfg, sum, asJSON)
		},
	}
	f := cmd.Flags()
	addKafkaClientFlags(f, &cfg.Kafka, &brokers)
	f.StringVar(&cfg.DataDir, "data-dir", "", "state directory; must not exist or be empty (default: a temporary directory, removed at exit)")
	f.StringVar(&emitFrom, "emit-from", "", "write only the events whose ts is at or after this instant (RFC 3339 or epoch milliseconds); default: all")
	f.StringVar(&cfg.OutputTopic, "output-topic", "", "topic for the membership events (new or empty; created when missing)")
	f.StringVar(&cfg.AccessOutputTopic, "access-output-topic", "", "topic for the access events, in the same transactions")
	f.StringVar(&cfg.OutputFile, "output-file", "", "file for the membership events (NDJSON)")
	f.StringVar(&cfg.AccessOutputFile, "access-output-file", "", "file for the access events (NDJSON)")
	f.StringVar(&cfg.DeadLetterFile, "deadletter", "", "file for the dead letters (NDJSON); default: only counted")
	f.StringVar(&cfg.Definitions, "definitions", "", "NDJSON file of definitions applied first, replacing the definitions topic's records with the same keys (a backtest)")
	f.StringVar(&cfg.TransactionalID, "transactional-id", "", "transactional id of the output producer (default smartgroups-replay-<output topic>)")
	f.Int32Var(&cfg.OutputPartitions, "output-partitions", 0, "partitions of an output topic it creates (default: those of the member topics)")
	f.IntVar(&cfg.BatchSize, "batch-size", cfg.BatchSize, "records per engine batch and output transaction")
	f.BoolVar(&asJSON, "json", false, "print the summary as one JSON object")
	addLimitFlags(f, &cfg.Limits)
	return cmd
}

func printSummary(w io.Writer, cfg replay.Config, s replay.Summary, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(s)
	}
	p := func(format string, args ...any) { _, _ = fmt.Fprintf(w, format, args...) }
	p("replayed %d records in %.1fs (%.0f records/s)\n", s.Records, s.Seconds, s.RecordsPerS)
	if cfg.Definitions != "" {
		p("  definitions: %d from %s, %d records of the definitions topic replaced\n", s.DefinitionsFromFile, cfg.Definitions, s.DefinitionsOverridden)
	}
	p("  membership events: %d written", s.Events)
	if cfg.HasEmitFrom {
		p(", %d before --emit-from left out", s.EventsBeforeEmitFrom)
	}
	p("\n  access events: %d written", s.Access)
	if cfg.HasEmitFrom {
		p(", %d before --emit-from left out", s.AccessBeforeEmitFrom)
	}
	p("\n  dead letters: %d", s.DeadLetters)
	if cfg.DeadLetterFile == "" && s.DeadLetters > 0 {
		p(" (not written: give --deadletter FILE)")
	}
	p("\n")
	for _, o := range []struct{ what, name string }{
		{"output topic", cfg.OutputTopic}, {"access output topic", cfg.AccessOutputTopic},
		{"output file", cfg.OutputFile}, {"access output file", cfg.AccessOutputFile}, {"dead letters file", cfg.DeadLetterFile},
	} {
		if o.name != "" {
			p("  %s: %s\n", o.what, o.name)
		}
	}
	if cfg.OutputTopic != "" || cfg.AccessOutputTopic != "" {
		p("  transactions committed: %d\n", s.Transactions)
	}
	return nil
}
