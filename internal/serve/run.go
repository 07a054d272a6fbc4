package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/smartgroups/smartgroups/connectors/kafka"
	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/internal/httpapi"
	"github.com/smartgroups/smartgroups/state"
)

// leaveTimeout bounds leaving the consumer group on shutdown.
const leaveTimeout = 10 * time.Second

// publishGrace is how long the publication of the batch in flight may go
// on after the shutdown began. Past it the publication is abandoned: its
// entries stay in the outbox and the next run publishes them.
const publishGrace = 10 * time.Second

type server struct {
	cfg      Config
	log      *slog.Logger
	eng      *engine.Engine
	st       *state.Store
	pub      *kafka.Publisher
	instance string
	api      *httpapi.API // nil when HTTP is off
	cons     *kafka.Consumer
	owned    map[int32]bool // guarded by mu
	mu       sync.Mutex
	// work serializes the loop's batches with the rebalance hooks, which
	// kgo runs on its own goroutines.
	work sync.Mutex
	// health probes the brokers (nil until Run starts it).
	health *brokerHealth
	// pubCtx is the context of publications started by the loop: it is
	// canceled publishGrace after the shutdown begins, not at once.
	pubCtx context.Context
	// inflight carries the result of the previous batch's publication,
	// which runs while the loop polls and processes the next batch (nil:
	// none). Guarded by work.
	inflight chan error
	// asyncErr is a publication error seen by a rebalance hook, returned
	// by the loop's next step. Guarded by work.
	asyncErr error
	// defDLThrough is the definitions offset (+1) through which dead
	// letters of definition records are published, by any instance.
	defDLThrough uint64
	// deleteRetention is the changelog's delete.retention.ms: a local
	// snapshot at least that old is not used for a restore.
	deleteRetention time.Duration

	ready            atomic.Bool
	restoring        atomic.Int32
	restoreRecords   prometheus.Counter
	restoreRemaining prometheus.Gauge
	restoresRunning  prometheus.Gauge
}

// embeddedMessageBytes is the largest record batch the embedded broker and
// the clients using it accept: four times the record size limit (at least
// Kafka's default), so that a record over the limit reaches the engine and
// is dead-lettered (too_large) instead of being refused at produce time,
// and the dead letter of a record at the limit, whose value is escaped
// into JSON, can be published.
func embeddedMessageBytes(lim engine.Limits) int {
	return max(4*lim.MaxRecordBytes, 1<<20+12)
}

// Run runs the service until ctx is done, then shuts down gracefully.
func Run(ctx context.Context, cfg Config) (err error) {
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("serve: data dir: %w", err)
	}
	if len(cfg.Kafka.Brokers) == 0 {
		msgBytes := embeddedMessageBytes(cfg.Limits)
		cfg.Kafka.MaxMessageBytes = int32(msgBytes)
		emb, err := kafka.StartEmbedded(kafka.EmbeddedConfig{Addr: cfg.EmbeddedAddr, DataDir: filepath.Join(cfg.DataDir, "broker"),
			MaxMessageBytes: msgBytes})
		if err != nil {
			return fmt.Errorf("serve: embedded broker: %w", err)
		}
		defer func() {
			if cerr := emb.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}()
		if n := emb.RepairedTransactions(); n > 0 {
			log.Info("embedded broker repaired transactions left open by a crash", "count", n)
		}
		cfg.Kafka.Brokers = []string{emb.Addr()}
		log.Info("embedded Kafka-compatible broker started", "addr", emb.Addr())
	}

	reg := prometheus.NewRegistry()
	if err := registerAll(reg, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return err
	}
	kmetrics, err := kafka.NewMetrics(reg)
	if err != nil {
		return err
	}

	partitions, retention, err := ensureTopics(ctx, cfg.Kafka, log)
	if err != nil {
		return err
	}
	if err := claimOutput(ctx, cfg, log); err != nil {
		return err
	}

	stateDir := filepath.Join(cfg.DataDir, "state")
	st, err := state.Open(stateDir, state.Options{CacheBytes: cfg.StateCacheBytes, FS: cfg.StateFS})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := st.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	ecfg := engine.DefaultConfig()
	ecfg.Clock, ecfg.Limits, ecfg.Registerer, ecfg.Logger = cfg.Clock, cfg.Limits, reg, log
	// The Kafka transaction is the commit: the engine keeps a batch's
	// partition state in memory until its output committed (Persist).
	ecfg.Changelog, ecfg.DefinitionOffsets, ecfg.DeferPartitionWrites = true, true, true
	ecfg.PartitionOf = partitionOf(cfg.Kafka.Topic(engine.KindProfiles), partitions)
	// A jump of the clock (a restart after downtime, a gap in the stream)
	// fires the overdue timers over several batches and ticks, not in one
	// transaction holding every member's time-driven changes.
	ecfg.MaxTimersPerBatch = timersPerBatch * cfg.BatchSize
	eng, err := engine.New(st, ecfg)
	if err != nil {
		return err
	}
	instance, err := eng.InstanceID()
	if err != nil {
		return err
	}
	clID, err := changelogTopicID(ctx, cfg.Kafka)
	if err != nil {
		return err
	}
	if _, err := reconcileChangelogID(st, eng, partitions, clID, log); err != nil {
		return err
	}
	pub, err := kafka.NewPublisher(cfg.Kafka, instance, kmetrics)
	if err != nil {
		return err
	}
	defer pub.Close()

	s := &server{cfg: cfg, log: log, eng: eng, st: st, pub: pub, instance: instance, owned: map[int32]bool{}, deleteRetention: retention}
	pubCtx, stopPub := graceContext(ctx, publishGrace)
	defer stopPub()
	s.pubCtx = pubCtx
	s.restoreRecords = prometheus.NewCounter(prometheus.CounterOpts{Name: "smartgroups_restore_records_total",
		Help: "Changelog records applied while restoring partitions moved from another instance."})
	s.restoreRemaining = prometheus.NewGauge(prometheus.GaugeOpts{Name: "smartgroups_restore_remaining_records",
		Help: "Changelog records left to apply in the restore in progress."})
	s.restoresRunning = prometheus.NewGauge(prometheus.GaugeOpts{Name: "smartgroups_restores_running",
		Help: "Partitions being restored from the changelog."})
	if err := registerAll(reg, s.restoreRecords, s.restoreRemaining, s.restoresRunning); err != nil {
		return err
	}

	copts, err := cfg.Kafka.ClientOpts()
	if err != nil {
		return err
	}
	health, err := newBrokerHealth(append(copts, kgo.ClientID(cfg.Kafka.ClientID+"-health")), log, reg)
	if err != nil {
		return err
	}
	defer health.close()
	s.health = health
	healthCtx, stopHealth := context.WithCancel(ctx)
	healthDone := make(chan struct{})
	go func() {
		defer close(healthDone)
		health.run(healthCtx)
	}()
	defer func() {
		stopHealth()
		<-healthDone
	}()

	var httpAddr string
	consumerCfg := cfg.Kafka
	// A static group member: an instance restarted on this data dir after
	// a crash gets its partitions back at once, without waiting for the
	// session of its previous run to time out.
	consumerCfg.InstanceID = cfg.Kafka.ClientID + "-" + instance
	if cfg.HTTPAddr != "" {
		ln, err := net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("serve: http listen %s: %w", cfg.HTTPAddr, err)
		}
		httpAddr = ln.Addr().String()
		advertise := advertiseAddr(cfg.HTTPAdvertise, httpAddr)
		api, closeAPI, err := s.newAPI(partitions, advertise)
		if err != nil {
			_ = ln.Close()
			return err
		}
		defer closeAPI()
		s.api = api
		defer s.serveHTTP(ln, reg, api)()
		// The consumer group member advertises the HTTP address to the
		// other instances (httpapi.GroupPeers).
		consumerCfg.ClientID = httpapi.PeerClientID(cfg.Kafka.ClientID, advertise)
	}

	cons, err := kafka.NewConsumer(consumerCfg, kafka.ConsumerHooks{OnAssigned: s.onAssigned, OnRevoked: s.onRevoked}, kmetrics)
	if err != nil {
		return err
	}
	s.cons = cons
	defer cons.Close()

	if err := s.bootstrapDefinitions(ctx, cons); err != nil {
		return err
	}
	s.ready.Store(true)
	if cfg.SizeInterval > 0 {
		retention := cfg.SizeRetention
		if retention <= 0 {
			retention = DefaultConfig().SizeRetention
		}
		z := &sizeSampler{eng: eng, st: st, log: log, interval: cfg.SizeInterval, retention: retention}
		zctx, stopSizes := context.WithCancel(ctx)
		zdone := make(chan struct{})
		go func() {
			defer close(zdone)
			z.run(zctx)
		}()
		defer func() {
			stopSizes()
			<-zdone
		}()
	}
	log.Info("ready", "instance", instance, "partitions", partitions, "brokers", cfg.Kafka.Brokers)
	if cfg.OnReady != nil {
		cfg.OnReady(Ready{Brokers: cfg.Kafka.Brokers, HTTPAddr: httpAddr})
	}
	err = s.loop(ctx, cons)
	s.ready.Store(false)
	if errors.Is(err, state.ErrFailed) {
		// A write to the store failed (a full disk, an I/O error): stop.
		// What was committed is safe, and the outbox of the last batches
		// is published by the restart once the cause is fixed.
		err = fmt.Errorf("serve: the state store in %s failed; fix the cause and restart: %w", stateDir, err)
		log.Error("state store write failed; stopping", "data_dir", cfg.DataDir, "err", err)
	}
	// Stopping for good: leave the group (revoking and releasing the owned
	// partitions) so that the other instances take them over at once.
	leaveCtx, cancel := context.WithTimeout(context.Background(), leaveTimeout)
	if lerr := cons.Leave(leaveCtx); lerr != nil {
		log.Warn("leaving the consumer group failed; the partitions move to other instances when the session times out", "err", lerr)
	} else {
		log.Info("left the consumer group", "group", cfg.Kafka.GroupID, "group_instance", consumerCfg.InstanceID)
	}
	cancel()
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		log.Info("shut down")
		return nil
	}
	return err
}

// graceContext returns a context that is canceled grace after ctx is done
// (or when the returned function is called), keeping ctx's values.
func graceContext(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	gctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(grace, cancel) })
	return gctx, func() {
		stop()
		cancel()
	}
}

// ensureTopics creates missing topics and checks them; it returns the
// partition count of the member topics and the changelog's
// delete.retention.ms (kafka.DefaultDeleteRetention, with a warning, when
// the broker cannot say).
func ensureTopics(ctx context.Context, kc kafka.Config, log *slog.Logger) (int32, time.Duration, error) {
	opts, err := kc.ClientOpts()
	if err != nil {
		return 0, 0, err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return 0, 0, fmt.Errorf("serve: kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if err := kafka.EnsureTopics(ctx, adm, kc); err != nil {
		return 0, 0, err
	}
	topic := kc.Topic(engine.KindProfiles)
	details, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return 0, 0, fmt.Errorf("serve: listing %s: %w", topic, err)
	}
	retention, err := kafka.ChangelogDeleteRetention(ctx, adm, kc)
	if err != nil {
		retention = kafka.DefaultDeleteRetention
		log.Warn("cannot read the changelog's delete.retention.ms; assuming the default", "default", retention, "err", err)
	}
	return int32(len(details[topic].Partitions)), retention, nil
}

// partitionOf maps a member to its input partition the way producers
// partition "<spot>/<member>" keys (murmur2, like the Java client).
func partitionOf(topic string, n int32) func(spot, member string) int32 {
	p := kgo.StickyKeyPartitioner(nil).ForTopic(topic)
	var mu sync.Mutex
	return func(spot, member string) int32 {
		mu.Lock()
		defer mu.Unlock()
		return int32(p.Partition(&kgo.Record{Key: []byte(spot + "/" + member)}, int(n)))
	}
}

func (s *server) bootstrapDefinitions(ctx context.Context, cons *kafka.Consumer) error {
	recs, err := cons.ReadDefinitions(ctx)
	if err != nil {
		return err
	}
	topic := s.cfg.Kafka.Topic(engine.KindDefinitions)
	from, _, err := s.eng.Position(engine.KindDefinitions, topic, 0)
	if err != nil {
		return err
	}
	var todo []engine.Record
	for _, r := range recs {
		if r.Offset >= from {
			todo = append(todo, r)
		}
	}
	if err := s.processAll(ctx, todo); err != nil {
		return err
	}
	s.log.Info("definitions loaded", "records", len(recs), "applied", len(todo))
	return nil
}

func registerAll(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("serve: register metrics: %w", err)
		}
	}
	return nil
}

// timersPerBatch × the batch size bounds the timers a batch or a tick
// fires (engine.Config.MaxTimersPerBatch).
const timersPerBatch = 4
