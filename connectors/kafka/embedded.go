package kafka

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DefaultEmbeddedAddr is where the embedded broker listens by default
// (SPEC §5, --embedded-broker).
const DefaultEmbeddedAddr = "127.0.0.1:9092"

// EmbeddedConfig configures an embedded broker.
type EmbeddedConfig struct {
	// Addr is the host:port to listen on and advertise to clients. Default
	// DefaultEmbeddedAddr; port 0 picks a free port (see Embedded.Addr).
	// Advertise a host clients can reach: 0.0.0.0 is accepted but is
	// advertised as is.
	Addr string
	// DataDir, when set, persists the broker (topics, logs, groups,
	// producer and transaction state) under this directory and reloads it
	// on start. Empty keeps everything in memory.
	DataDir string
	// SyncWrites fsyncs every produced batch. Without it writes reach the
	// OS page cache at once (they survive a process crash, not a power
	// loss), like Kafka's default flush policy.
	SyncWrites bool
	// MaxMessageBytes is the largest record batch the broker accepts
	// (message.max.bytes); a larger one is refused with MESSAGE_TOO_LARGE.
	// Default 0: Kafka's default, 1 MiB plus 12 bytes.
	MaxMessageBytes int
	// Logger receives the broker's logs; nil discards them.
	Logger kfake.Logger
	// Opts are extra kfake options, applied last.
	Opts []kfake.Opt
}

// Embedded is an in-process, Kafka-compatible single broker (kfake). It
// supports what the runtime needs: topic admin with configs, consumer
// groups, idempotent and transactional producers with read_committed
// fetches, log compaction and, with a data dir, persistence across
// restarts. After a crash (no clean Close), kfake aborts the transactions
// that were open; StartEmbedded then also writes their missing abort
// markers (see RepairedTransactions), without which read_committed
// consumers would drop every later transaction of those producers.
type Embedded struct {
	cluster  *kfake.Cluster
	addr     string
	dataDir  string
	repaired int
	once     sync.Once
}

// StartEmbedded starts an embedded broker.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	addr := cfg.Addr
	if addr == "" {
		addr = DefaultEmbeddedAddr
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("kafka: embedded broker address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("kafka: embedded broker address %q: bad port", addr)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	listenAddr := net.JoinHostPort(host, strconv.Itoa(port))

	opts := []kfake.Opt{
		kfake.Ports(port), // one broker
		// kfake always listens on 127.0.0.1; listen on the configured
		// host instead. The broker advertises the listener's address.
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, listenAddr)
		}),
		kfake.ClusterID("smartgroups-embedded"),
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
		if cfg.SyncWrites {
			opts = append(opts, kfake.SyncWrites())
		}
	}
	if cfg.MaxMessageBytes > 0 {
		opts = append(opts, kfake.BrokerConfigs(map[string]string{"message.max.bytes": strconv.Itoa(cfg.MaxMessageBytes)}))
	}
	if cfg.Logger != nil {
		opts = append(opts, kfake.WithLogger(cfg.Logger))
	}
	opts = append(opts, cfg.Opts...)

	// A data dir holding state but no clean-shutdown mark was left by a
	// crash: repair its transactions once the broker runs.
	crashed := false
	if cfg.DataDir != "" {
		entries, _ := os.ReadDir(cfg.DataDir)
		_, markErr := os.Stat(filepath.Join(cfg.DataDir, cleanShutdownFile))
		crashed = len(entries) > 0 && markErr != nil
		if err := os.Remove(filepath.Join(cfg.DataDir, cleanShutdownFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("kafka: embedded broker data dir: %w", err)
		}
	}

	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: starting embedded broker on %s: %w", listenAddr, err)
	}
	addrs := c.ListenAddrs()
	if len(addrs) == 0 {
		c.Close()
		return nil, fmt.Errorf("kafka: embedded broker on %s has no listener", listenAddr)
	}
	e := &Embedded{cluster: c, addr: addrs[0], dataDir: cfg.DataDir}
	if crashed {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		n, err := e.repairTransactions(ctx)
		if err != nil {
			_ = e.Close()
			return nil, fmt.Errorf("kafka: embedded broker: repairing transactions after a crash: %w", err)
		}
		e.repaired = n
	}
	return e, nil
}

// cleanShutdownFile marks a data dir whose broker was closed cleanly.
const cleanShutdownFile = ".smartgroups-clean-shutdown"

// repairTransactions works around a kfake crash-recovery gap. On reload,
// kfake treats a transaction that was open at the crash as aborted, but
// writes no abort marker to the log. Consumers learn that a producer's
// records are aborted from the fetch response and stop dropping them only
// at the producer's abort marker; without one, every later transaction of
// that producer (kfake keeps its id, bumping the epoch) is dropped too, so
// a restarted Publisher's commits would stay invisible to read_committed
// consumers. We scan every partition for transactional records that no
// marker closes and write the missing abort markers (WriteTxnMarkers).
// It returns how many markers were written.
func (e *Embedded) repairTransactions(ctx context.Context) (int, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.addr))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	topics, err := kadm.NewClient(cl).ListTopics(fresh(ctx))
	if err != nil {
		return 0, err
	}
	type pidEpoch struct {
		pid   int64
		epoch int16
	}
	written := 0
	for _, td := range topics.Sorted() {
		for _, pd := range td.Partitions.Sorted() {
			open := make(map[int64]int16)
			_, err := readPartition(ctx, cl, td.Topic, pd.Partition, -1, false, func(r *kgo.Record) error {
				switch {
				case r.Attrs.IsControl():
					delete(open, r.ProducerID)
				case r.Attrs.IsTransactional():
					open[r.ProducerID] = r.ProducerEpoch
				}
				return nil
			})
			if err != nil {
				return written, err
			}
			dangling := make([]pidEpoch, 0, len(open))
			for pid, epoch := range open {
				dangling = append(dangling, pidEpoch{pid, epoch})
			}
			for _, d := range dangling {
				req := kmsg.NewPtrWriteTxnMarkersRequest()
				m := kmsg.NewWriteTxnMarkersRequestMarker()
				m.ProducerID = d.pid
				m.ProducerEpoch = d.epoch
				m.Committed = false
				mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
				mt.Topic = td.Topic
				mt.Partitions = []int32{pd.Partition}
				m.Topics = append(m.Topics, mt)
				req.Markers = append(req.Markers, m)
				resp, err := cl.Broker(int(pd.Leader)).RetriableRequest(ctx, req)
				if err != nil {
					return written, err
				}
				for _, rm := range resp.(*kmsg.WriteTxnMarkersResponse).Markers {
					for _, rt := range rm.Topics {
						for _, rp := range rt.Partitions {
							if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
								return written, fmt.Errorf("abort marker for producer %d on %s/%d: %w", d.pid, td.Topic, pd.Partition, err)
							}
						}
					}
				}
				written++
			}
		}
	}
	return written, nil
}

// RepairedTransactions is how many transactions left open by a crash had
// their abort marker written at start (see StartEmbedded).
func (e *Embedded) RepairedTransactions() int { return e.repaired }

// Addr is the host:port the broker listens on, to use as the seed broker.
func (e *Embedded) Addr() string { return e.addr }

// Cluster exposes the kfake cluster, for tests (fault injection, Compact).
func (e *Embedded) Cluster() *kfake.Cluster { return e.cluster }

// Compact runs log compaction now on every compacted topic. kfake compacts
// on its own every log.cleaner.backoff.ms (default one hour).
func (e *Embedded) Compact() { e.cluster.Compact() }

// Close stops the broker, persisting its state when it has a data dir. It is
// safe to call more than once.
func (e *Embedded) Close() error {
	var err error
	e.once.Do(func() {
		e.cluster.Close()
		if e.dataDir != "" {
			err = os.WriteFile(filepath.Join(e.dataDir, cleanShutdownFile), nil, 0o600)
		}
	})
	return err
}
