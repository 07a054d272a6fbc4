package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/smartgroups/smartgroups/engine"
)

// SASL mechanisms accepted by SASLConfig.Mechanism (case-insensitive).
const (
	SASLPlain       = "plain"
	SASLScramSHA256 = "scram-sha-256"
	SASLScramSHA512 = "scram-sha-512"
)

// Topic name suffixes appended to Config.TopicPrefix.
const (
	SuffixMemberships = "memberships"
	SuffixAccess      = "access"
	SuffixDeadLetter  = "deadletter"
	SuffixProgress    = "progress"
	SuffixChangelog   = "changelog"
)

// MemberKinds are the three co-partitioned member input kinds, in the order
// used in messages.
var MemberKinds = []engine.Kind{engine.KindProfiles, engine.KindActivities, engine.KindProperties}

// TLSConfig configures TLS toward the brokers.
type TLSConfig struct {
	// Enable turns TLS on. The other fields are only valid when it is set.
	Enable bool
	// CAFile is a PEM bundle of the CAs to trust; empty uses the system pool.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// mutual TLS. Both or neither.
	CertFile string
	KeyFile  string
	// ServerName overrides the name verified in the broker certificate.
	ServerName string
	// InsecureSkipVerify disables broker certificate verification. Tests only.
	InsecureSkipVerify bool
}

// SASLConfig configures SASL authentication.
type SASLConfig struct {
	// Mechanism is "" (no SASL), "plain", "scram-sha-256" or "scram-sha-512".
	Mechanism string
	User      string
	Password  string
}

// Config is the Kafka runtime configuration. Build it from DefaultConfig and
// check it with Validate.
type Config struct {
	// Brokers are the seed brokers, host:port. Required.
	Brokers []string
	// TopicPrefix prefixes every topic name. Default "smartgroups.".
	TopicPrefix string
	// Partitions is the partition count of the topics EnsureTopics creates
	// (member topics, memberships, deadletter, progress). Default 6.
	Partitions int32
	// ReplicationFactor of created topics; -1 (default) uses the broker
	// default.
	ReplicationFactor int16
	// GroupID is the consumer group of the member topics. Default
	// "smartgroups".
	GroupID string
	// TransactionalIDPrefix prefixes the transactional ids of the
	// Publisher; input partition P publishes with "<prefix><P>". Default
	// "smartgroups-txn-". Two deployments on one cluster need different
	// prefixes.
	TransactionalIDPrefix string
	// ClientID is the Kafka client id prefix. Default "smartgroups".
	ClientID string
	// InstanceID, when set, makes the Consumer a static member of the
	// group (group.instance.id, KIP-345): a member restarted with the same
	// id gets its partitions back at once instead of after the session
	// timeout of its previous incarnation, and Consumer.Leave removes it
	// from the group for good. It must be stable across restarts and
	// unique in the group. Default "" (a dynamic member).
	InstanceID string
	// TransactionTimeout is the broker-side timeout of a Publisher
	// transaction. Default 30s.
	TransactionTimeout time.Duration
	// DialTimeout bounds connecting to a broker. Default 10s.
	DialTimeout time.Duration
	// MaxMessageBytes is the largest record batch the clients produce
	// (kgo.ProducerBatchMaxBytes) and the most bytes fetched per partition
	// (kgo.FetchMaxPartitionBytes). Default 0: franz-go's defaults, which
	// fit a broker with Kafka's default message.max.bytes (1 MiB). Set it
	// no higher than the broker's message.max.bytes: batches of many small
	// records grow up to it. serve sets it for the embedded broker.
	MaxMessageBytes int32
	// OwnersTopic is the compacted topic in which deployments record
	// which output topics they own (see owners.go). It is shared by every
	// deployment of a cluster, whatever its TopicPrefix: give them all the
	// same one. Default "smartgroups.owners".
	OwnersTopic string

	TLS  TLSConfig
	SASL SASLConfig
}

// DefaultConfig returns the defaults documented on Config, with brokers
// 127.0.0.1:9092 (the embedded broker's default address).
func DefaultConfig() Config {
	return Config{
		Brokers:               []string{DefaultEmbeddedAddr},
		TopicPrefix:           "smartgroups.",
		Partitions:            6,
		ReplicationFactor:     -1,
		GroupID:               "smartgroups",
		TransactionalIDPrefix: "smartgroups-txn-",
		ClientID:              "smartgroups",
		TransactionTimeout:    30 * time.Second,
		DialTimeout:           10 * time.Second,
		OwnersTopic:           DefaultOwnersTopic,
	}
}

// maxTopicLen is Kafka's limit on topic name length.
const maxTopicLen = 249

func validTopicChars(s string) bool {
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
		default:
			return false
		}
	}
	return true
}

// Validate reports every problem with the configuration, joined.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("kafka: "+format, args...)) }

	if len(c.Brokers) == 0 {
		bad("no brokers configured")
	}
	for _, b := range c.Brokers {
		if strings.TrimSpace(b) == "" {
			bad("empty broker address")
		}
	}
	if !validTopicChars(c.TopicPrefix) {
		bad("topic prefix %q: only ASCII letters, digits, '.', '_' and '-' are allowed", c.TopicPrefix)
	}
	if len(c.TopicPrefix)+len(SuffixMemberships) > maxTopicLen {
		bad("topic prefix %q is too long (topic names are at most %d characters)", c.TopicPrefix, maxTopicLen)
	}
	if c.OwnersTopic == "" || len(c.OwnersTopic) > maxTopicLen || !validTopicChars(c.OwnersTopic) {
		bad("owners topic %q: 1 to %d ASCII letters, digits, '.', '_' and '-'", c.OwnersTopic, maxTopicLen)
	}
	if c.Partitions < 1 {
		bad("partitions must be at least 1, got %d", c.Partitions)
	}
	if c.ReplicationFactor == 0 || c.ReplicationFactor < -1 {
		bad("replication factor must be -1 (broker default) or at least 1, got %d", c.ReplicationFactor)
	}
	if c.GroupID == "" {
		bad("group id is required")
	}
	if c.TransactionalIDPrefix == "" {
		bad("transactional id prefix is required")
	}
	if len(c.InstanceID) > maxTopicLen || !validTopicChars(c.InstanceID) {
		bad("group instance id %q: at most %d ASCII letters, digits, '.', '_' and '-'", c.InstanceID, maxTopicLen)
	}
	if c.TransactionTimeout < time.Second {
		bad("transaction timeout must be at least 1s, got %v", c.TransactionTimeout)
	}
	if c.DialTimeout <= 0 {
		bad("dial timeout must be positive, got %v", c.DialTimeout)
	}
	if c.MaxMessageBytes < 0 {
		bad("max message bytes cannot be negative, got %d", c.MaxMessageBytes)
	}

	t := c.TLS
	if !t.Enable && (t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" || t.InsecureSkipVerify) {
		bad("TLS options are set but TLS is not enabled")
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		bad("TLS client certificate and key must be given together (cert %q, key %q)", t.CertFile, t.KeyFile)
	}
	for _, f := range []struct{ what, path string }{{"CA file", t.CAFile}, {"certificate file", t.CertFile}, {"key file", t.KeyFile}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			bad("TLS %s: %v", f.what, err)
		}
	}

	switch strings.ToLower(c.SASL.Mechanism) {
	case "":
		if c.SASL.User != "" || c.SASL.Password != "" {
			bad("SASL user or password set without a SASL mechanism")
		}
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if c.SASL.User == "" {
			bad("SASL %s needs a user", strings.ToLower(c.SASL.Mechanism))
		}
	default:
		bad("unknown SASL mechanism %q (want %s, %s or %s)", c.SASL.Mechanism, SASLPlain, SASLScramSHA256, SASLScramSHA512)
	}
	return errors.Join(errs...)
}

// Topic returns the physical topic name of an input kind.
func (c Config) Topic(k engine.Kind) string { return c.TopicPrefix + string(k) }

// MembershipsTopic is the output topic (SPEC §4.2).
func (c Config) MembershipsTopic() string { return c.TopicPrefix + SuffixMemberships }

// AccessTopic is the access output topic (SPEC §4.3).
func (c Config) AccessTopic() string { return c.TopicPrefix + SuffixAccess }

// DeadLetterTopic receives the dead letters.
func (c Config) DeadLetterTopic() string { return c.TopicPrefix + SuffixDeadLetter }

// ProgressTopic holds the Publisher's progress markers.
func (c Config) ProgressTopic() string { return c.TopicPrefix + SuffixProgress }

// ChangelogTopic holds every partition's state changes, for restoring a
// partition on another instance.
func (c Config) ChangelogTopic() string { return c.TopicPrefix + SuffixChangelog }

// MemberTopics returns the physical names of the three member topics.
func (c Config) MemberTopics() []string {
	ts := make([]string, len(MemberKinds))
	for i, k := range MemberKinds {
		ts[i] = c.Topic(k)
	}
	return ts
}

// Kind maps a physical input topic name back to its engine kind.
func (c Config) Kind(topic string) (engine.Kind, bool) {
	rest, ok := strings.CutPrefix(topic, c.TopicPrefix)
	if !ok {
		return "", false
	}
	return engine.ParseKind(rest)
}

// TransactionalID is the transactional id the Publisher uses for an input
// partition: "<prefix><partition>", or "<prefix>definitions" for
// engine.DefPartition.
func (c Config) TransactionalID(partition int32) string {
	if partition == engine.DefPartition {
		return c.TransactionalIDPrefix + "definitions"
	}
	return fmt.Sprintf("%s%d", c.TransactionalIDPrefix, partition)
}

// progressPartition is the progress topic partition holding the markers of
// an input partition: the same number, and 0 for engine.DefPartition.
func progressPartition(partition int32) int32 { return max(partition, 0) }

// validClientOpts validates c and returns its ClientOpts followed by
// extra.
func (c Config) validClientOpts(extra []kgo.Opt) ([]kgo.Opt, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	opts, err := c.ClientOpts()
	if err != nil {
		return nil, err
	}
	return append(opts, extra...), nil
}

// ClientOpts returns the kgo options shared by every client: seed brokers,
// dial timeout, message size (when MaxMessageBytes is set), TLS and SASL. It reads the TLS files.
func (c Config) ClientOpts() ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.DialTimeout(c.DialTimeout),
	}
	if c.MaxMessageBytes > 0 {
		opts = append(opts, kgo.ProducerBatchMaxBytes(c.MaxMessageBytes), kgo.FetchMaxPartitionBytes(c.MaxMessageBytes))
	}
	if c.TLS.Enable {
		tc, err := c.TLS.build()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	switch strings.ToLower(c.SASL.Mechanism) {
	case "":
	case SASLPlain:
		opts = append(opts, kgo.SASL(plain.Auth{User: c.SASL.User, Pass: c.SASL.Password}.AsMechanism()))
	case SASLScramSHA256:
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASL.User, Pass: c.SASL.Password}.AsSha256Mechanism()))
	case SASLScramSHA512:
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASL.User, Pass: c.SASL.Password}.AsSha512Mechanism()))
	default:
		return nil, fmt.Errorf("kafka: unknown SASL mechanism %q", c.SASL.Mechanism)
	}
	return opts, nil
}

func (t TLSConfig) build() (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // explicit opt-in, documented as tests only
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka: reading TLS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka: TLS CA file %s holds no PEM certificate", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka: loading TLS client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
