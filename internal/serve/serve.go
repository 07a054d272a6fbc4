package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/smartgroups/smartgroups/connectors/kafka"
	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/internal/httpapi"
	"github.com/smartgroups/smartgroups/state"
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
	// Limits bound records and rules. Default engine.DefaultLimits().
	Limits engine.Limits
	// MemberCache is ignored, a deprecated setting: the members of owned
	// partitions are always held in memory (docs/decisions.md). It is
	// accepted so that existing deployments (--member-cache) keep starting.
	MemberCache int
	// StateCacheBytes is the most memory the Pebble block cache takes.
	// Default 64 MiB: the record path reads nothing from the store (owned
	// partitions are held in memory), so the cache serves only loading a
	// partition and what the store itself reads.
	StateCacheBytes int64
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
		StateCacheBytes: 64 << 20,
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

type server struct {
	cfg      Config
	log      *slog.Logger
	eng      *engine.Engine
	pub      *kafka.Publisher
	instance string
	api      *httpapi.API // nil when HTTP is off
	cons     *kafka.Consumer
	owned    map[int32]bool // guarded by mu
	mu       sync.Mutex
	// work serializes the loop's batches with the rebalance hooks, which
	// kgo runs on its own goroutines.
	work sync.Mutex
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

	ready            atomic.Bool
	restoring        atomic.Int32
	restoreRecords   prometheus.Counter
	restoreRemaining prometheus.Gauge
	restoresRunning  prometheus.Gauge
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
		emb, err := kafka.StartEmbedded(kafka.EmbeddedConfig{Addr: cfg.EmbeddedAddr, DataDir: filepath.Join(cfg.DataDir, "broker")})
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

	partitions, err := ensureTopics(ctx, cfg.Kafka)
	if err != nil {
		return err
	}

	st, err := state.Open(filepath.Join(cfg.DataDir, "state"), state.Options{CacheBytes: cfg.StateCacheBytes})
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
	ecfg.Changelog, ecfg.DefinitionOffsets = true, true
	ecfg.PartitionOf = partitionOf(cfg.Kafka.Topic(engine.KindProfiles), partitions)
	eng, err := engine.New(st, ecfg)
	if err != nil {
		return err
	}
	instance, err := eng.InstanceID()
	if err != nil {
		return err
	}
	pub, err := kafka.NewPublisher(cfg.Kafka, instance, kmetrics)
	if err != nil {
		return err
	}
	defer pub.Close()

	s := &server{cfg: cfg, log: log, eng: eng, pub: pub, instance: instance, owned: map[int32]bool{}}
	s.restoreRecords = prometheus.NewCounter(prometheus.CounterOpts{Name: "smartgroups_restore_records_total",
		Help: "Changelog records applied while restoring partitions moved from another instance."})
	s.restoreRemaining = prometheus.NewGauge(prometheus.GaugeOpts{Name: "smartgroups_restore_remaining_records",
		Help: "Changelog records left to apply in the restore in progress."})
	s.restoresRunning = prometheus.NewGauge(prometheus.GaugeOpts{Name: "smartgroups_restores_running",
		Help: "Partitions being restored from the changelog."})
	if err := registerAll(reg, s.restoreRecords, s.restoreRemaining, s.restoresRunning); err != nil {
		return err
	}

	var httpAddr string
	consumerCfg := cfg.Kafka
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
	log.Info("ready", "instance", instance, "partitions", partitions, "brokers", cfg.Kafka.Brokers)
	if cfg.OnReady != nil {
		cfg.OnReady(Ready{Brokers: cfg.Kafka.Brokers, HTTPAddr: httpAddr})
	}
	err = s.loop(ctx, cons)
	cons.Close() // leave the group: revokes and releases owned partitions
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		log.Info("shut down")
		return nil
	}
	return err
}

func ensureTopics(ctx context.Context, kc kafka.Config) (int32, error) {
	opts, err := kc.ClientOpts()
	if err != nil {
		return 0, err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return 0, fmt.Errorf("serve: kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if err := kafka.EnsureTopics(ctx, adm, kc); err != nil {
		return 0, err
	}
	topic := kc.Topic(engine.KindProfiles)
	details, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("serve: listing %s: %w", topic, err)
	}
	return int32(len(details[topic].Partitions)), nil
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

func (s *server) loop(ctx context.Context, cons *kafka.Consumer) error {
	lastTick := time.Now()
	for {
		pollCtx, cancel := context.WithTimeout(ctx, s.cfg.TickInterval)
		recs, err := cons.Poll(pollCtx, s.cfg.BatchSize)
		cancel()
		if ctx.Err() != nil {
			s.work.Lock()
			_ = s.drain() // the entry stays in the outbox if it failed
			s.work.Unlock()
			return ctx.Err()
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			// kgo reports a failed join or sync (a timeout during a
			// rebalance, being kicked out of the group) as an
			// ErrGroupSession in a poll: owned partitions were lost
			// (OnRevoked ran) and the client keeps rejoining on its
			// own, so this is not fatal, unless rejoining cannot help.
			var gs *kgo.ErrGroupSession
			if !errors.As(err, &gs) || groupErrorFatal(err) {
				return err
			}
			s.log.Warn("consumer group session error; rejoining", "err", err)
		}
		// The rebalance hooks run on kgo's goroutines, not only while
		// Poll blocks: hold work so that a hook never interleaves with a
		// batch (its outbox entries would race ours to the publisher).
		s.work.Lock()
		err = s.step(ctx, recs, &lastTick)
		if err != nil {
			// Let a publication in flight finish before the caller
			// closes the clients it uses.
			_ = s.drain()
		}
		s.work.Unlock()
		if err != nil {
			return err
		}
	}
}

// step processes and publishes one polled batch, fires due timers and
// flushes the definitions outbox.
//
// Publishing is pipelined: a batch's output is published in the
// background while the next batch is polled and processed; the next
// publication (or a rebalance hook) first waits for it, so each
// partition's transactions stay in outbox order. The outbox entries are
// durable before publishing starts, so a crash at any point republishes
// them on restart, exactly as without the pipeline.
func (s *server) step(ctx context.Context, recs []engine.Record, lastTick *time.Time) error {
	if err := s.asyncErr; err != nil {
		return err
	}
	if len(recs) > 0 {
		res, err := s.eng.Process(ctx, recs)
		if err != nil {
			return err
		}
		s.applied(recs, res)
		if err := s.publishAsync(ctx, res); err != nil {
			return err
		}
	}
	if time.Since(*lastTick) >= s.cfg.TickInterval {
		*lastTick = time.Now()
		res, err := s.eng.Tick(ctx)
		if err != nil {
			return err
		}
		if err := s.publishAsync(ctx, res); err != nil {
			return err
		}
	}
	return s.flushDefinitionOutbox(ctx)
}

// publishAsync waits for the previous publication, then starts publishing
// res in the background. Called with work held.
func (s *server) publishAsync(ctx context.Context, res *engine.Result) error {
	if err := s.drain(); err != nil {
		return err
	}
	if len(res.Outbox) == 0 && len(res.Events) == 0 {
		return nil
	}
	done := make(chan error, 1)
	s.inflight = done
	go func() { done <- s.publish(ctx, res) }()
	return nil
}

// drain waits for the publication in flight, if any, and returns its
// error. Called with work held.
func (s *server) drain() error {
	if s.inflight == nil {
		return nil
	}
	err := <-s.inflight
	s.inflight = nil
	return err
}

// publish publishes a result's outbox entries of member partitions and
// acknowledges them; definition dead letters are handled by
// flushDefinitionOutbox.
func (s *server) publish(ctx context.Context, res *engine.Result) error {
	// One transaction per partition; partitions publish concurrently.
	var wg sync.WaitGroup
	errs := make([]error, len(res.Outbox))
	for i, o := range res.Outbox {
		if o.Partition == engine.DefPartition {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.publishEntry(ctx, o)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	s.eng.ObserveLatency(res)
	if s.cfg.OnEvents != nil && len(res.Events) > 0 {
		s.cfg.OnEvents(res.Events)
	}
	return nil
}

func (s *server) publishEntry(ctx context.Context, o engine.OutboxEntry) error {
	b := kafka.Batch{Partition: o.Partition, Events: o.Events, DeadLetters: o.DeadLetters,
		Changelog: o.Changelog, DefinitionTombstones: o.DefinitionTombstones, OutboxID: o.ID}
	err := s.pub.Publish(ctx, b)
	if err != nil {
		// One retry with a fresh producer: a transient failure leaves the
		// entry in the outbox, and Acquire tells whether it was committed.
		s.log.Warn("publish failed; acquiring the partition again", "partition", o.Partition, "err", err)
		marker, aerr := s.pub.Acquire(ctx, o.Partition)
		if aerr != nil {
			return fmt.Errorf("serve: partition %d: publish: %w (acquire: %w)", o.Partition, err, aerr)
		}
		if marker.Instance != "" && marker.Instance != s.instance {
			return fmt.Errorf("serve: partition %d was taken over by instance %s while this one still processed it: %w", o.Partition, marker.Instance, err)
		}
		if err := s.pub.Publish(ctx, b); err != nil {
			return fmt.Errorf("serve: partition %d: publish: %w", o.Partition, err)
		}
	}
	return s.eng.Ack(o.Partition, o.ID)
}

// flushDefinitionOutbox publishes dead letters of definition records when
// this instance owns member partition 0 (one instance publishes them, not
// every instance that reads the definitions); otherwise it drops them.
// Until the first assignment they wait.
func (s *server) flushDefinitionOutbox(ctx context.Context) error {
	s.mu.Lock()
	anyOwned, owner := len(s.owned) > 0, s.owned[0]
	s.mu.Unlock()
	if !anyOwned {
		return nil
	}
	pending, err := s.eng.Pending(engine.DefPartition)
	if err != nil || len(pending) == 0 {
		return err
	}
	if owner {
		// The marker of the definitions pseudo-partition counts definitions
		// offsets (+1), not outbox ids, so it means the same on every
		// instance: what another owner published is not published again.
		if _, ok := s.pub.Published(engine.DefPartition); !ok {
			marker, err := s.pub.Acquire(ctx, engine.DefPartition)
			if err != nil {
				return err
			}
			s.defDLThrough = marker.OutboxID
		}
		for _, o := range pending {
			var dls []engine.DeadLetter
			through := s.defDLThrough
			for _, d := range o.DeadLetters {
				if next := uint64(d.Offset) + 1; next > s.defDLThrough {
					dls, through = append(dls, d), max(through, next)
				}
			}
			if len(dls) == 0 {
				continue
			}
			if err := s.pub.Publish(ctx, kafka.Batch{Partition: o.Partition, DeadLetters: dls, OutboxID: through}); err != nil {
				s.pub.Release(engine.DefPartition)
				return fmt.Errorf("serve: publishing definition dead letters: %w", err)
			}
			s.defDLThrough = through
		}
	}
	return s.eng.Ack(engine.DefPartition, pending[len(pending)-1].ID)
}

func partitionsOf(a kafka.Assignment) []int32 {
	set := map[int32]bool{}
	for _, ps := range a {
		for _, p := range ps {
			set[p] = true
		}
	}
	out := make([]int32, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// onAssigned takes over newly assigned partitions: fence the previous
// owner, bring the local state up to date (republish our unpublished
// outbox, or restore from the changelog), reconcile with the definitions,
// and return the input positions to resume at.
func (s *server) onAssigned(ctx context.Context, assigned kafka.Assignment) (kafka.Offsets, error) {
	s.work.Lock()
	defer s.work.Unlock()
	if err := s.drain(); err != nil {
		s.asyncErr = err
		return nil, err
	}
	parts := partitionsOf(assigned)
	s.restoring.Add(1)
	defer s.restoring.Add(-1)
	for _, p := range parts {
		marker, err := s.pub.Acquire(ctx, p)
		if err != nil {
			return nil, err
		}
		if marker.Instance != "" && marker.Instance != s.instance {
			if err := s.restore(ctx, p, marker); err != nil {
				return nil, err
			}
			continue
		}
		pending, err := s.eng.Pending(p)
		if err != nil {
			return nil, err
		}
		for _, o := range pending {
			if marker.Instance == s.instance && o.ID <= marker.OutboxID {
				if err := s.eng.Ack(p, o.ID); err != nil {
					return nil, err
				}
				continue
			}
			if err := s.publishEntry(ctx, o); err != nil {
				return nil, err
			}
		}
	}
	// The previous owners are fenced now: what they published reflects at
	// most the definitions committed so far. Apply those before
	// reconciling, or reconciliation would roll the partitions back to
	// older definitions.
	if err := s.catchUpDefinitions(ctx); err != nil {
		return nil, err
	}
	res, err := s.eng.Assign(ctx, parts)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	for _, p := range parts {
		s.owned[p] = true
	}
	s.mu.Unlock()
	if err := s.publish(ctx, res); err != nil {
		return nil, err
	}
	out := kafka.Offsets{}
	for topic, ps := range assigned {
		kind, _ := s.cfg.Kafka.Kind(topic)
		out[topic] = map[int32]int64{}
		for _, p := range ps {
			off, ok, err := s.eng.Position(kind, topic, p)
			if err != nil {
				return nil, err
			}
			if !ok {
				off = -1
			}
			out[topic][p] = off
		}
	}
	s.log.Info("partitions assigned", "partitions", parts)
	return out, nil
}

// catchUpDefinitions applies the definitions committed on the topic that
// the tail has not delivered yet.
func (s *server) catchUpDefinitions(ctx context.Context) error {
	if s.cons == nil {
		return nil
	}
	topic := s.cfg.Kafka.Topic(engine.KindDefinitions)
	from, _, err := s.eng.Position(engine.KindDefinitions, topic, 0)
	if err != nil {
		return err
	}
	recs, err := s.cons.CatchUpDefinitions(ctx, from)
	if err != nil {
		return err
	}
	return s.processAll(ctx, recs)
}

// processAll processes records in batches of BatchSize and publishes each
// batch's output.
func (s *server) processAll(ctx context.Context, recs []engine.Record) error {
	for i := 0; i < len(recs); i += s.cfg.BatchSize {
		batch := recs[i:min(i+s.cfg.BatchSize, len(recs))]
		res, err := s.eng.Process(ctx, batch)
		if err != nil {
			return err
		}
		s.applied(batch, res)
		if err := s.publish(ctx, res); err != nil {
			return err
		}
	}
	return nil
}

func (s *server) restore(ctx context.Context, p int32, marker kafka.ProgressMarker) error {
	s.restoresRunning.Inc()
	defer s.restoresRunning.Dec()
	start := time.Now()
	s.log.Info("restoring partition from the changelog", "partition", p, "published_by", marker.Instance)
	if err := s.eng.DropPartition(p); err != nil {
		return err
	}
	n := 0
	err := s.pub.ReadChangelog(ctx, p, func(entries []engine.ChangelogEntry, remaining int64) error {
		n += len(entries)
		s.restoreRecords.Add(float64(len(entries)))
		s.restoreRemaining.Set(float64(remaining))
		return s.eng.RestorePartition(p, entries, false)
	})
	if err != nil {
		return err
	}
	if err := s.eng.RestorePartition(p, nil, true); err != nil {
		return err
	}
	s.restoreRemaining.Set(0)
	s.log.Info("partition restored", "partition", p, "records", n, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func (s *server) onRevoked(_ context.Context, revoked kafka.Assignment) {
	s.work.Lock()
	defer s.work.Unlock()
	if err := s.drain(); err != nil && s.asyncErr == nil {
		s.asyncErr = err
	}
	parts := partitionsOf(revoked)
	s.eng.Revoke(parts)
	s.mu.Lock()
	for _, p := range parts {
		delete(s.owned, p)
	}
	s.mu.Unlock()
	for _, p := range parts {
		s.pub.Release(p)
	}
	s.log.Info("partitions revoked", "partitions", parts)
}

// applied tells the HTTP API which definitions the engine just committed
// (writes wait for them).
func (s *server) applied(recs []engine.Record, res *engine.Result) {
	if s.api != nil {
		s.api.Applied(recs, res)
	}
}

// newAPI builds the HTTP API with its own Kafka client, which produces
// definitions and describes the consumer group to find the peers.
func (s *server) newAPI(partitions int32, advertise string) (*httpapi.API, func(), error) {
	cfg := s.cfg
	opts, err := cfg.Kafka.ClientOpts()
	if err != nil {
		return nil, nil, err
	}
	cl, err := kgo.NewClient(append(opts, kgo.ClientID(cfg.Kafka.ClientID+"-api"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		return nil, nil, fmt.Errorf("serve: kafka client of the HTTP API: %w", err)
	}
	topic := cfg.Kafka.Topic(engine.KindDefinitions)
	adm := kadm.NewClient(cl)
	api, err := httpapi.New(httpapi.Config{
		Engine:           s.eng,
		DefinitionsTopic: topic,
		Produce: func(ctx context.Context, key string, value []byte) (int64, error) {
			r, err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 0, Key: []byte(key), Value: value}).First()
			if err != nil {
				return 0, err
			}
			return r.Offset, nil
		},
		DefinitionsEnd: func(ctx context.Context) (int64, error) {
			offs, err := adm.ListCommittedOffsets(ctx, topic)
			if err != nil {
				return 0, err
			}
			o, ok := offs.Lookup(topic, 0)
			if !ok {
				return 0, fmt.Errorf("serve: no offsets of %s", topic)
			}
			return o.Offset, o.Err
		},
		Partitions: partitions,
		Peers:      httpapi.NewGroupPeers(adm, cfg.Kafka.GroupID, cfg.Kafka.Topic(engine.KindProfiles)),
		Self:       advertise,
		APIToken:   cfg.APIToken,
		SpotTokens: cfg.SpotTokens,
		Ready:      s.ready.Load,
		Logger:     s.log,
	})
	if err != nil {
		cl.Close()
		return nil, nil, err
	}
	return api, cl.Close, nil
}

// advertiseAddr is the HTTP address given to the other instances: the
// configured one, else the bound one (with the host name when bound to
// every interface).
func advertiseAddr(configured, bound string) string {
	if configured != "" {
		return configured
	}
	host, port, err := net.SplitHostPort(bound)
	if err != nil {
		return bound
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			return net.JoinHostPort(h, port)
		}
	}
	return bound
}

// serveHTTP serves the API, /metrics, /healthz and /readyz on ln until the
// returned stop function is called.
func (s *server) serveHTTP(ln net.Listener, reg *prometheus.Registry, api *httpapi.API) func() {
	mux := http.NewServeMux()
	mux.Handle("/v1/", api.Handler())
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	// Go profiles for operators: admin token only (open on a loopback-only
	// listener without tokens, like the API).
	mux.Handle("/debug/pprof/", api.AdminOnly(http.HandlerFunc(pprof.Index)))
	mux.Handle("/debug/pprof/cmdline", api.AdminOnly(http.HandlerFunc(pprof.Cmdline)))
	mux.Handle("/debug/pprof/profile", api.AdminOnly(http.HandlerFunc(pprof.Profile)))
	mux.Handle("/debug/pprof/symbol", api.AdminOnly(http.HandlerFunc(pprof.Symbol)))
	mux.Handle("/debug/pprof/trace", api.AdminOnly(http.HandlerFunc(pprof.Trace)))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() || s.restoring.Load() > 0 {
			http.Error(w, "not ready: loading definitions or restoring partitions", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server", "err", err)
		}
	}()
	s.log.Info("http listening", "addr", ln.Addr().String())
	return func() {
		api.Close() // ends waits of requests in flight
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}
}

func registerAll(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("serve: register metrics: %w", err)
		}
	}
	return nil
}

// groupErrorFatal reports the consumer group errors that rejoining cannot
// cure: configuration and authorization problems.
func groupErrorFatal(err error) bool {
	for _, e := range []error{kerr.GroupAuthorizationFailed, kerr.TopicAuthorizationFailed, kerr.InvalidGroupID, kerr.InvalidSessionTimeout} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
