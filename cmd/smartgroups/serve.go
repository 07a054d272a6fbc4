package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/smartgroups/smartgroups/internal/httpapi"
	"github.com/smartgroups/smartgroups/internal/serve"
)

// serveFlags binds the flags shared by serve and demo to a serve.Config.
type serveFlags struct {
	brokers, clock, logLevel, spotTokens string
}

func addServeFlags(f *pflag.FlagSet, cfg *serve.Config, sf *serveFlags) {
	f.StringVar(&sf.brokers, "brokers", "", "Kafka seed brokers, comma-separated (empty: start an embedded broker)")
	f.StringVar(&cfg.EmbeddedAddr, "embedded-broker", cfg.EmbeddedAddr, "listen address of the embedded broker")
	f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "state directory (and the embedded broker's data)")
	f.StringVar(&cfg.HTTPAddr, "http", cfg.HTTPAddr, "HTTP listen address of the API (/v1), /metrics, /healthz, /readyz (empty: off); without a token it must be a loopback address")
	f.StringVar(&cfg.HTTPAdvertise, "http-advertise", "", "host:port other instances reach this one's HTTP API at (default: the --http address)")
	f.StringVar(&cfg.APIToken, "api-token", "", "admin bearer token of the HTTP API, valid for every spot (prefer SMARTGROUPS_API_TOKEN)")
	f.StringVar(&sf.spotTokens, "spot-tokens", "", "file of per-spot API tokens, one <spot>:<token> per line")
	f.StringVar(&cfg.Kafka.GroupID, "group-id", cfg.Kafka.GroupID, "consumer group of the member topics")
	f.StringVar(&cfg.Kafka.TopicPrefix, "topic-prefix", cfg.Kafka.TopicPrefix, "prefix of every topic name")
	f.Int32Var(&cfg.Kafka.Partitions, "partitions", cfg.Kafka.Partitions, "partitions of the topics it creates")
	f.StringVar(&cfg.Kafka.TransactionalIDPrefix, "transactional-id-prefix", cfg.Kafka.TransactionalIDPrefix, "prefix of the output transactional ids")
	f.StringVar(&cfg.Kafka.OwnersTopic, "owners-topic", cfg.Kafka.OwnersTopic, "compacted topic recording which deployment owns which output topic (the same for every deployment of a cluster)")
	f.StringVar(&sf.clock, "clock", "wall", "engine clock: wall or event (largest ts seen)")
	f.IntVar(&cfg.BatchSize, "batch-size", cfg.BatchSize, "most input records per committed batch")
	f.IntVar(&cfg.MemberCache, "member-cache", cfg.MemberCache, "deprecated, ignored: the members of owned partitions are always held in memory")
	f.Int64Var(&cfg.StateCacheBytes, "state-cache-bytes", cfg.StateCacheBytes, "Pebble block cache in bytes (the record path reads nothing from the store)")
	f.BoolVar(&cfg.Kafka.TLS.Enable, "tls", false, "connect to Kafka with TLS")
	f.StringVar(&cfg.Kafka.TLS.CAFile, "tls-ca", "", "CA certificate file (PEM)")
	f.StringVar(&cfg.Kafka.TLS.CertFile, "tls-cert", "", "client certificate file (PEM)")
	f.StringVar(&cfg.Kafka.TLS.KeyFile, "tls-key", "", "client key file (PEM)")
	f.StringVar(&cfg.Kafka.TLS.ServerName, "tls-server-name", "", "server name to verify")
	f.BoolVar(&cfg.Kafka.TLS.InsecureSkipVerify, "tls-insecure-skip-verify", false, "do not verify the broker certificate")
	f.StringVar(&cfg.Kafka.SASL.Mechanism, "sasl-mechanism", "", "SASL mechanism: plain, scram-sha-256 or scram-sha-512")
	f.StringVar(&cfg.Kafka.SASL.User, "sasl-user", "", "SASL user")
	f.StringVar(&cfg.Kafka.SASL.Password, "sasl-password", "", "SASL password (prefer SMARTGROUPS_SASL_PASSWORD)")
	f.StringVar(&sf.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	addLimitFlags(f, &cfg.Limits)
	f.Int64Var(&cfg.MaxRequestBytes, "max-request-bytes", cfg.MaxRequestBytes, "largest HTTP request body in bytes; a larger one gets 413 body_too_large")
}

// apply finishes the config from the string flags.
func (sf *serveFlags) apply(cfg *serve.Config) error {
	cfg.Kafka.Brokers = brokerList(sf.brokers)
	if err := checkLimits(cfg.Limits); err != nil {
		return err
	}
	if cfg.MaxRequestBytes <= 0 {
		return fmt.Errorf("--max-request-bytes must be positive, not %d", cfg.MaxRequestBytes)
	}
	clock, err := clockMode(sf.clock)
	if err != nil {
		return err
	}
	cfg.Clock = clock
	cfg.SpotTokens = nil
	if sf.spotTokens != "" {
		toks, err := httpapi.LoadSpotTokens(sf.spotTokens)
		if err != nil {
			return fmt.Errorf("--spot-tokens: %w", err)
		}
		cfg.SpotTokens = toks
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(sf.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	return cfg.Validate()
}

func newServeCmd() *cobra.Command {
	cfg := serve.DefaultConfig()
	var sf serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the engine on Kafka (an embedded broker when --brokers is empty)",
		Long: `Consumes the member and definitions topics, maintains every smart group and
publishes membership changes exactly once to <prefix>memberships. Creates
missing topics and refuses to start when the member topics are not
co-partitioned, and refuses to start when its output topics belong to
another deployment (another --group-id or --transactional-id-prefix; see
--owners-topic and --take-over-output). Serves the HTTP API (/v1, bearer tokens from --api-token
and --spot-tokens), /metrics, /healthz and /readyz on --http. Stops
gracefully on SIGINT or SIGTERM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := sf.apply(&cfg); err != nil {
				return err
			}
			return serve.Run(cmd.Context(), cfg)
		},
	}
	addServeFlags(cmd.Flags(), &cfg, &sf)
	cmd.Flags().BoolVar(&cfg.TakeOverOutput, "take-over-output", false, "publish to output topics another deployment owns, moving the claim to this one (logged as a warning); for a deliberate move only")
	return cmd
}
