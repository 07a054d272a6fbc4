package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/smartgroups/smartgroups/engine"
)

// Consumer errors.
var (
	// ErrConsumerClosed is returned by Poll after Close.
	ErrConsumerClosed = errors.New("kafka: consumer closed")
	// ErrDefinitionsRead is returned by ReadDefinitions called twice or
	// after the first Poll.
	ErrDefinitionsRead = errors.New("kafka: ReadDefinitions must be called once, before the first Poll")
)

// Assignment maps topic -> partitions, as kgo reports assignments.
type Assignment = map[string][]int32

// Offsets maps topic -> partition -> offset.
type Offsets = map[string]map[int32]int64

// ConsumerHooks are the Consumer's rebalance callbacks. They run on the
// consumer group's goroutine, never inside Poll's caller, while the group
// waits: keep them shorter than the rebalance timeout. They must not call
// Consumer.Close. The Consumer never ends a transaction from them (the
// Publisher is a separate client).
type ConsumerHooks struct {
	// OnAssigned is called with newly assigned partitions before any of
	// their records is fetched. It returns the offset to start each
	// partition at (the engine's committed input position); a partition
	// it leaves out, or gives a negative offset, starts at the log start.
	// An error stops the Consumer: Poll returns it.
	OnAssigned func(ctx context.Context, assigned Assignment) (Offsets, error)
	// OnRevoked is called with partitions this instance no longer owns
	// (revoked in a rebalance, or lost on a group error). Poll does not
	// return their records afterwards.
	OnRevoked func(ctx context.Context, revoked Assignment)
}

// Consumer reads the three member topics as a consumer group member with
// read_committed isolation, and the definitions topic as a global table.
//
// Group offsets are never committed: the engine keeps its input positions
// in its own state, atomically with the state they produced, and hands them
// back through ConsumerHooks.OnAssigned, where the Consumer seeks.
//
// Rebalances happen only between polls: a batch returned by Poll belongs to
// this instance until the next Poll (or AllowRebalance). Process and commit
// a batch before polling again.
type Consumer struct {
	cfg     Config
	hooks   ConsumerHooks
	metrics *Metrics
	base    []kgo.Opt
	ctx     context.Context
	cancel  context.CancelFunc

	mu        sync.Mutex
	group     *kgo.Client
	defs      *kgo.Client
	closed    bool
	fatal     error
	pending   error // a fetch error held back to return after its records
	polled    bool
	wake      context.CancelFunc   // cancels an in-flight group poll
	position  map[tp]int64         // next offset per member partition
	highWater map[tp]int64         // last known high watermark
	assigned  map[tp]struct{}      // current assignment
	defsCh    chan []engine.Record // tailed definitions
	defsErr   chan error           // tail errors
	wg        sync.WaitGroup       // the definitions tail goroutine
}

type tp struct {
	topic     string
	partition int32
}

// NewConsumer creates a Consumer. It does not connect yet: the group is
// joined on the first Poll, after ReadDefinitions. Extra kgo options apply
// to every client it creates; m may be nil.
func NewConsumer(cfg Config, hooks ConsumerHooks, m *Metrics, opts ...kgo.Opt) (*Consumer, error) {
	base, err := cfg.validClientOpts(opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Consumer{
		cfg:       cfg,
		hooks:     hooks,
		metrics:   m,
		base:      base,
		ctx:       ctx,
		cancel:    cancel,
		position:  make(map[tp]int64),
		highWater: make(map[tp]int64),
		assigned:  make(map[tp]struct{}),
	}
	return c, nil
}

// ReadDefinitions reads the definitions topic from its start to its high
// watermark as of the call (read_committed, waiting for transactions open
// below it), returns its records in order, and starts tailing it: later
// definitions records are returned by Poll. Call it at most once, before
// the first Poll; without it Poll returns member records only.
func (c *Consumer) ReadDefinitions(ctx context.Context) ([]engine.Record, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrConsumerClosed
	}
	if c.polled || c.defs != nil {
		c.mu.Unlock()
		return nil, ErrDefinitionsRead
	}
	c.mu.Unlock()

	topic := c.cfg.Topic(engine.KindDefinitions)
	// A plain client for the bootstrap read, reused for the tail.
	opts := c.metrics.clientOpts(c.base, c.cfg.ClientID+"-definitions", kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	boot, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: creating definitions client: %w", err)
	}
	var recs []engine.Record
	next, err := readPartitionToEnd(ctx, boot, topic, 0, -1, func(r *kgo.Record) error {
		recs = append(recs, toRecord(engine.KindDefinitions, r))
		return nil
	})
	boot.Close()
	if err != nil {
		return nil, fmt.Errorf("kafka: reading definitions: %w", err)
	}

	tail, err := kgo.NewClient(append(opts,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(next)}}),
		kgo.FetchMaxWait(500*time.Millisecond),
	)...)
	if err != nil {
		return nil, fmt.Errorf("kafka: creating definitions tail: %w", err)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		tail.Close()
		return nil, ErrConsumerClosed
	}
	c.defs = tail
	c.defsCh = make(chan []engine.Record, 1)
	c.defsErr = make(chan error, 1)
	c.wg.Add(1)
	c.mu.Unlock()
	go c.tailDefinitions(tail)
	return recs, nil
}

// CatchUpDefinitions reads the definitions topic from offset from to its
// current end (read_committed) and returns the records. A runtime calls it
// when it takes over a partition: the previous owner, now fenced, can have
// applied definitions the tail has not delivered yet. The tail delivers
// them again later; the engine skips what it applied.
func (c *Consumer) CatchUpDefinitions(ctx context.Context, from int64) ([]engine.Record, error) {
	opts := append([]kgo.Opt{}, c.base...)
	opts = append(opts, kgo.ClientID(c.cfg.ClientID+"-definitions-catchup"), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: creating definitions client: %w", err)
	}
	defer cl.Close()
	var recs []engine.Record
	start := from
	if start <= 0 {
		start = -1 // the log start
	}
	_, err = readPartitionToEnd(ctx, cl, c.cfg.Topic(engine.KindDefinitions), 0, start, func(r *kgo.Record) error {
		recs = append(recs, toRecord(engine.KindDefinitions, r))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("kafka: catching up definitions: %w", err)
	}
	return recs, nil
}

func (c *Consumer) tailDefinitions(cl *kgo.Client) {
	defer c.wg.Done()
	for {
		fs := cl.PollFetches(c.ctx)
		if fs.IsClientClosed() || c.ctx.Err() != nil {
			return
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if ferr == nil && !errors.Is(err, context.Canceled) {
				ferr = fmt.Errorf("kafka: tailing %s/%d: %w", t, p, err)
			}
		})
		var recs []engine.Record
		fs.EachRecord(func(r *kgo.Record) {
			recs = append(recs, toRecord(engine.KindDefinitions, r))
		})
		if len(recs) > 0 {
			select {
			case c.defsCh <- recs:
				c.wakePoll()
			case <-c.ctx.Done():
				return
			}
		}
		if ferr != nil {
			// Delivered after the records fetched with it.
			select {
			case c.defsErr <- ferr:
			case <-c.ctx.Done():
			}
			c.wakePoll()
			return
		}
	}
}

// wakePoll interrupts a Poll waiting on the group client so that it returns
// the tailed definitions.
func (c *Consumer) wakePoll() {
	c.mu.Lock()
	if c.wake != nil {
		c.wake()
	}
	c.mu.Unlock()
}

func (c *Consumer) groupClient() (*kgo.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrConsumerClosed
	}
	c.polled = true
	if c.group != nil {
		return c.group, nil
	}
	opts := c.metrics.clientOpts(c.base, c.cfg.ClientID+"-consumer",
		kgo.ConsumerGroup(c.cfg.GroupID),
		kgo.ConsumeTopics(c.cfg.MemberTopics()...),
		// Range assignment gives a member the same partition numbers on
		// every co-partitioned topic (the default cooperative-sticky
		// balancer does not), so one instance owns all of a member's
		// records.
		kgo.Balancers(kgo.RangeBalancer()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.OnPartitionsAssigned(c.onAssigned),
		kgo.AdjustFetchOffsetsFn(c.adjustOffsets),
		kgo.OnPartitionsRevoked(c.onRevoked),
		kgo.OnPartitionsLost(c.onRevoked),
	)
	if c.cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(c.cfg.InstanceID))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: creating consumer: %w", err)
	}
	c.group = cl
	return cl, nil
}

// onAssigned runs once per completed rebalance.
func (c *Consumer) onAssigned(context.Context, *kgo.Client, map[string][]int32) {
	c.metrics.rebalance()
}

// adjustOffsets runs after a rebalance with the newly assigned partitions
// and their (unused) committed offsets, before fetching starts.
func (c *Consumer) adjustOffsets(ctx context.Context, fetched map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	assigned := make(Assignment, len(fetched))
	for t, ps := range fetched {
		for p := range ps {
			assigned[t] = append(assigned[t], p)
		}
	}
	var start Offsets
	if c.hooks.OnAssigned != nil {
		var err error
		start, err = c.hooks.OnAssigned(ctx, assigned)
		if err != nil {
			err = fmt.Errorf("kafka: OnAssigned: %w", err)
			c.setFatal(err)
			return nil, err
		}
	}
	out := make(map[string]map[int32]kgo.Offset, len(fetched))
	c.mu.Lock()
	defer c.mu.Unlock()
	for t, ps := range fetched {
		out[t] = make(map[int32]kgo.Offset, len(ps))
		for p := range ps {
			off, ok := start[t][p]
			if ok && off >= 0 {
				// Epoch -1: we seek, kgo must not check for data loss.
				out[t][p] = kgo.NewOffset().At(off).WithEpoch(-1)
				c.position[tp{t, p}] = off
			} else {
				out[t][p] = kgo.NewOffset().AtStart()
				delete(c.position, tp{t, p})
			}
			c.assigned[tp{t, p}] = struct{}{}
		}
	}
	return out, nil
}

func (c *Consumer) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	n := 0
	c.mu.Lock()
	for t, ps := range revoked {
		for _, p := range ps {
			n++
			k := tp{t, p}
			delete(c.assigned, k)
			delete(c.position, k)
			delete(c.highWater, k)
			c.metrics.dropLag(t, p)
		}
	}
	c.mu.Unlock()
	if n > 0 && c.hooks.OnRevoked != nil {
		c.hooks.OnRevoked(ctx, revoked)
	}
}

func (c *Consumer) setFatal(err error) {
	c.mu.Lock()
	if c.fatal == nil {
		c.fatal = err
	}
	c.mu.Unlock()
}

// Poll returns the next batch: tailed definitions records first (after
// ReadDefinitions), then member records, up to maxRecords member records
// (<= 0: no limit). It blocks until there is something or ctx is done (then
// it returns ctx's error). Polling allows the rebalance the previous batch
// held back.
//
// A fetch error comes back alone, after the records fetched with it were
// returned. Errors from OnAssigned and from tailing definitions are fatal:
// every later Poll returns them.
func (c *Consumer) Poll(ctx context.Context, maxRecords int) ([]engine.Record, error) {
	cl, err := c.groupClient()
	if err != nil {
		return nil, err
	}
	cl.AllowRebalance()
	c.mu.Lock()
	pending := c.pending
	c.pending = nil
	c.mu.Unlock()
	if pending != nil {
		return nil, pending
	}
	for {
		if err := c.fatalErr(); err != nil {
			return nil, err
		}
		if recs, ok, err := c.takeDefinitions(); ok {
			return recs, err
		}

		pollCtx, cancel := context.WithCancel(ctx)
		c.mu.Lock()
		c.wake = cancel
		c.mu.Unlock()
		// Definitions may have arrived before wake was set.
		if recs, ok, err := c.takeDefinitions(); ok {
			c.clearWake()
			cancel()
			return recs, err
		}
		fs := cl.PollRecords(pollCtx, maxRecords)
		c.clearWake()
		cancel()

		if fs.IsClientClosed() {
			return nil, ErrConsumerClosed
		}
		var recs []engine.Record
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return
			}
			if ferr == nil {
				ferr = fmt.Errorf("kafka: fetching %s/%d: %w", t, p, err)
			}
		})
		if err := c.fatalErr(); err != nil {
			return nil, err
		}
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			kind, ok := c.cfg.Kind(p.Topic)
			if !ok {
				return
			}
			for _, r := range p.Records {
				recs = append(recs, toRecord(kind, r))
			}
			c.track(p.Topic, p.Partition, p.HighWatermark, p.Records)
		})
		if ferr != nil {
			if len(recs) > 0 {
				// Hand out the records fetched with the error
				// first: kgo moved past them already.
				c.mu.Lock()
				c.pending = ferr
				c.mu.Unlock()
				return recs, nil
			}
			return nil, ferr
		}
		if len(recs) > 0 {
			return recs, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// Woken for definitions, or an empty fetch: loop.
	}
}

// AllowRebalance lets a pending rebalance proceed before the next Poll,
// once the last batch is committed.
func (c *Consumer) AllowRebalance() {
	c.mu.Lock()
	cl := c.group
	c.mu.Unlock()
	if cl != nil {
		cl.AllowRebalance()
	}
}

func (c *Consumer) takeDefinitions() ([]engine.Record, bool, error) {
	c.mu.Lock()
	ch, errc := c.defsCh, c.defsErr
	c.mu.Unlock()
	if ch == nil {
		return nil, false, nil
	}
	select {
	case recs := <-ch:
		return recs, true, nil
	case err := <-errc:
		c.setFatal(err)
		return nil, true, err
	default:
		return nil, false, nil
	}
}

func (c *Consumer) clearWake() {
	c.mu.Lock()
	c.wake = nil
	c.mu.Unlock()
}

func (c *Consumer) fatalErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fatal
}

func (c *Consumer) track(topic string, partition int32, hwm int64, recs []*kgo.Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := tp{topic, partition}
	if _, ok := c.assigned[k]; !ok {
		return
	}
	if n := len(recs); n > 0 {
		c.position[k] = recs[n-1].Offset + 1
	}
	if hwm >= 0 {
		c.highWater[k] = hwm
	}
	if pos, ok := c.position[k]; ok {
		if hw, ok := c.highWater[k]; ok {
			c.metrics.setLag(topic, partition, max(hw-pos, 0))
		}
	}
}

// Lag returns, per assigned member partition with a known position, the
// high watermark seen in the last fetch minus the position (the offset of
// the next record Poll will return). Transaction markers count as records,
// so a caught-up partition written transactionally may show a lag of 1.
func (c *Consumer) Lag() Offsets {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(Offsets)
	for k, pos := range c.position {
		hw, ok := c.highWater[k]
		if !ok {
			continue
		}
		if out[k.topic] == nil {
			out[k.topic] = make(map[int32]int64)
		}
		out[k.topic][k.partition] = max(hw-pos, 0)
	}
	return out
}

// Assigned returns the member partitions currently assigned.
func (c *Consumer) Assigned() Assignment {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(Assignment)
	for k := range c.assigned {
		out[k.topic] = append(out[k.topic], k.partition)
	}
	return out
}

// Close closes every client and stops being a member of the group,
// running OnRevoked for the owned partitions. A dynamic member leaves the
// group, whose other members then share its partitions at once. A static
// member (Config.InstanceID) does not leave: its partitions wait, until
// its session times out, for a restart with the same instance id to take
// them back without a rebalance. Use Leave to stop for good. Do not call
// Close from a hook.
func (c *Consumer) Close() { _ = c.close(context.Background(), false) }

// Leave is Close for a member that is not coming back: a static member
// also removes its instance id from the group, so that the other members
// get its partitions at once instead of after its session timeout. ctx
// bounds the leave; the clients are closed either way. It returns what
// went wrong leaving the group (then the partitions move when the session
// times out). Do not call Leave from a hook.
func (c *Consumer) Leave(ctx context.Context) error { return c.close(ctx, true) }

// close closes the Consumer; with leave, a static member also leaves the
// group, within ctx.
func (c *Consumer) close(ctx context.Context, leave bool) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	group, defs := c.group, c.defs
	if c.wake != nil {
		c.wake()
	}
	c.mu.Unlock()
	c.cancel()
	var err error
	if group != nil {
		group.AllowRebalance()
		if leave && c.cfg.InstanceID != "" {
			err = c.leaveStatic(ctx, group)
		}
		group.Close()
	}
	if defs != nil {
		defs.Close()
	}
	c.wg.Wait()
	return err
}

// leaveStatic stops the group session of a static member (running
// OnRevoked; kgo sends no LeaveGroup for a static member) and then removes
// its instance id from the group with an explicit LeaveGroup request.
func (c *Consumer) leaveStatic(ctx context.Context, group *kgo.Client) error {
	if err := group.LeaveGroupContext(ctx); err != nil {
		return fmt.Errorf("kafka: leaving group %s: %w", c.cfg.GroupID, err)
	}
	resps, err := kadm.NewClient(group).LeaveGroup(ctx,
		kadm.LeaveGroup(c.cfg.GroupID).InstanceIDs(c.cfg.InstanceID).Reason("the instance is shutting down"))
	if err == nil {
		err = resps.Error()
	}
	// Unknown: the instance is not (or no longer) a member; nothing to leave.
	if err != nil && !errors.Is(err, kerr.UnknownMemberID) {
		return fmt.Errorf("kafka: removing instance %s from group %s: %w", c.cfg.InstanceID, c.cfg.GroupID, err)
	}
	return nil
}

func toRecord(kind engine.Kind, r *kgo.Record) engine.Record {
	return engine.Record{
		Kind:      kind,
		Topic:     r.Topic,
		Partition: r.Partition,
		Offset:    r.Offset,
		Key:       r.Key,
		Value:     r.Value,
		Produced:  r.Timestamp,
	}
}
