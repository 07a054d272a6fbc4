package serve

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/smartgroups/smartgroups/connectors/kafka"
	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/internal/httpapi"
)

// Config configures Run. Build it with DefaultConfig.
type Config struct {
	// Kafka is the Kafka configuration. With no brokers, an embedded
	// broker is started on EmbeddedAddr.
	Kafka kafka.Config
	// EmbeddedAddr is where the embedded broker listens. Default
	// 127.0.0.1:9092.
	EmbeddedAddr string
	// DataDir holds the state store (and the embedded broker's data).
	// Default "./data".
	DataDir string
	// HTTPAddr serves the HTTP API (/v1), /metrics, /healthz and /readyz.
	// Default 127.0.0.1:8080; empty disables HTTP.
	HTTPAddr string
	// HTTPAdvertise is the address other instances reach this one's HTTP
	// API at, for reads spread over instances. Default: the bound
	// address, with the host name when bound to every interface.
	HTTPAdvertise string
	// APIToken is the admin token of the HTTP API, valid for every spot.
	APIToken string
	// SpotTokens are tokens valid for one spot each. Without any token
	// the HTTP API is open and HTTPAddr must be a loopback address.
	SpotTokens []httpapi.SpotToken
	// Clock is the engine clock: wall (default) or event.
	Clock engine.ClockMode
	// BatchSize is the most member records processed per batch. Default 1000.
	BatchSize int
	// TickInterval is how often due timers are fired. Default 200ms, so a
	// time-driven change is emitted well within one second.
	TickInterval time.Duration
	// Limits bound records and rules. Default engine.DefaultLimits(). The
	// limits that validate definitions (rule depth, nodes, values) must be
	// the same on every instance of a deployment.
	Limits engine.Limits
	// MaxRequestBytes bounds an HTTP request body. Default 1 MiB.
	MaxRequestBytes int64
	// MemberCache is ignored, a deprecated setting: the members of owned
	// partitions are always held in memory (docs/decisions.md). It is
	// accepted so that existing deployments (--member-cache) keep starting.
	MemberCache int
	// StateCacheBytes is the most memory the Pebble block cache takes.
	// Default 64 MiB: the record path reads nothing from the store (owned
	// partitions are held in memory), so the cache serves only loading a
	// partition and what the store itself reads.
	StateCacheBytes int64
	// StateFS is the filesystem of the state store. Default: the
	// operating system's. Tests inject faults (a full disk) through it.
	StateFS vfs.FS
	// SizeInterval is how often the member count of every group is
	// sampled for the size series (GET …/groups/{id}/size; points are kept
	// per minute). Default 1 minute; 0 turns the series off.
	SizeInterval time.Duration
	// SizeRetention is how long size points are kept. Default 7 days.
	SizeRetention time.Duration
	// TakeOverOutput moves the claim on the output topics to this
	// deployment when another one owns them (the owners topic,
	// kafka.Owners), with a warning, instead of refusing to start. For a
	// deliberate move of the topics from one deployment to another.
	// Default false.
	TakeOverOutput bool
	// Logger logs lifecycle events. Default: text to stderr.
	Logger *slog.Logger
	// OnEvents, when set, is called with the membership changes of every
	// published batch, after they are committed to Kafka.
	OnEvents func([]engine.Event)
	// OnReady, when set, is called once the instance is ready.
	OnReady func(Ready)
}

// Ready describes a running instance.
type Ready struct {
	Brokers  []string // Kafka bootstrap addresses in use
	HTTPAddr string   // bound HTTP address, empty when HTTP is off
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	k := kafka.DefaultConfig()
	k.Brokers = nil
	return Config{
		Kafka:           k,
		EmbeddedAddr:    kafka.DefaultEmbeddedAddr,
		DataDir:         "./data",
		HTTPAddr:        "127.0.0.1:8080",
		Clock:           engine.ClockWall,
		BatchSize:       1000,
		TickInterval:    200 * time.Millisecond,
		Limits:          engine.DefaultLimits(),
		MaxRequestBytes: httpapi.MaxBodyBytes,
		StateCacheBytes: 64 << 20,
		SizeInterval:    time.Minute,
		SizeRetention:   7 * 24 * time.Hour,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("serve: data dir is required"))
	}
	if c.Clock != engine.ClockWall && c.Clock != engine.ClockEvent {
		errs = append(errs, errors.New("serve: clock must be wall or event"))
	}
	if c.MemberCache < 0 || c.StateCacheBytes < 0 {
		return errors.New("serve: the member cache and the state cache cannot be negative")
	}
	if err := c.Limits.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.MaxRequestBytes <= 0 {
		errs = append(errs, fmt.Errorf("serve: the max request bytes limit must be positive, not %d", c.MaxRequestBytes))
	}
	if c.SizeInterval < 0 || c.SizeRetention < 0 {
		errs = append(errs, errors.New("serve: the size interval and retention cannot be negative"))
	}
	if c.BatchSize < 1 {
		errs = append(errs, errors.New("serve: batch size must be at least 1"))
	}
	if c.TickInterval <= 0 || c.TickInterval > time.Second {
		errs = append(errs, errors.New("serve: tick interval must be in (0, 1s]"))
	}
	if c.HTTPAddr != "" && c.APIToken == "" && len(c.SpotTokens) == 0 && !httpapi.IsLoopback(c.HTTPAddr) {
		errs = append(errs, fmt.Errorf("serve: no API token is configured (--api-token or --spot-tokens), so the HTTP API may only listen on a loopback address, not %s", c.HTTPAddr))
	}
	if c.APIToken != "" && len(c.APIToken) < 16 {
		errs = append(errs, errors.New("serve: the API token must be at least 16 characters"))
	}
	if len(c.Kafka.Brokers) == 0 && c.EmbeddedAddr == "" {
		errs = append(errs, errors.New("serve: either brokers or an embedded broker address is required"))
	}
	k := c.Kafka
	if len(k.Brokers) == 0 {
		k.Brokers = []string{"embedded:0"}
	}
	if err := k.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
