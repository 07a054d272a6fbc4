package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/smartgroups/smartgroups/engine/rule"
	"github.com/smartgroups/smartgroups/state"
)

// ClockMode selects what "now" is (SPEC §3.4).
type ClockMode int

// Clock modes.
const (
	// ClockFixed keeps now at Config.Now (process --now).
	ClockFixed ClockMode = iota + 1
	// ClockEvent sets now to the largest ts seen on member records.
	ClockEvent
	// ClockWall follows the wall clock; the runtime calls Tick.
	ClockWall
)

// DefPartition is the pseudo-partition of outbox entries that do not belong
// to a member partition (dead letters of definition records).
const DefPartition int32 = -1

// Config configures an Engine. Build it with DefaultConfig.
type Config struct {
	// Clock is the clock mode. Default ClockEvent.
	Clock ClockMode
	// Now is the fixed instant for ClockFixed, and the initial instant of
	// ClockEvent for a new store. Default 0.
	Now rule.Millis
	// Limits bound records and rules. Default DefaultLimits().
	Limits Limits
	// PartitionOf returns the input partition owning a member. Default: 0.
	PartitionOf func(spot, member string) int32
	// Registerer receives the engine's metrics. Default: none.
	Registerer prometheus.Registerer
	// Logger logs lifecycle events. Default: discard.
	Logger *slog.Logger
	// WallClock returns the wall time for ClockWall. Default time.Now.
	WallClock func() time.Time
	// Changelog makes every outbox entry carry the partition's state
	// changes, for restoring a partition on another instance (serve).
	// Default false (process).
	Changelog bool
	// DeferPartitionWrites makes Process, Tick and Assign apply a batch
	// to memory and return it without writing the partition-scoped state
	// to the store and without an outbox entry: the runtime commits the
	// batch's output (with its changelog) elsewhere, then calls Persist,
	// which writes the changes without sync, tagged with the changelog
	// offset they reflect. Global keys (definitions, the definitions
	// position, the definitions outbox) are written at once, without
	// sync. Requires Changelog. Default false (process: one synced batch
	// with an outbox).
	DeferPartitionWrites bool
	// DefinitionOffsets says that definitions records carry their topic
	// offsets, so a record below the position already applied is a
	// re-delivery and is skipped (serve). Default false: a file's line
	// numbers start again with every run.
	DefinitionOffsets bool
	// MaxTimersPerBatch bounds the timers one Process, Tick or Assign
	// fires; the others stay due and fire in the next calls (Tick fires
	// them without records). It keeps a jump of the clock (a restart
	// after downtime, a gap in the event stream) from building one batch,
	// and one transaction, of every member's time-driven changes. Default
	// 0: no bound (process: strictly in order).
	MaxTimersPerBatch int
}

// maxEventsHint bounds the capacity a batch's events slice starts at.
const maxEventsHint = 1 << 16

// Limits bound what records and rules may contain (SPEC §4). Each breach is
// dead-lettered or refused with a reason naming the limit.
type Limits struct {
	MaxRecordBytes int // a record value, default 1 MiB
	MaxRuleDepth   int // nesting of a rule, default 32
	MaxRuleNodes   int // nodes of a rule, default 1,000
	MaxValues      int // entries in a trigger's value list, default 1,000
	MaxTags        int // tags per member, default 1,000
	// HistoryPerMember bounds the membership transitions kept per member
	// (history.go), default 100; 0 keeps none.
	HistoryPerMember int
}

// DefaultLimits returns the limits of SPEC §4.
func DefaultLimits() Limits {
	r := rule.DefaultLimits()
	return Limits{MaxRecordBytes: 1 << 20, MaxRuleDepth: r.MaxRuleDepth, MaxRuleNodes: r.MaxRuleNodes,
		MaxValues: r.MaxValues, MaxTags: 1000, HistoryPerMember: 100}
}

// MaxRecordBytesLimit is the largest MaxRecordBytes accepted: runtimes
// size broker messages and input lines from it.
const MaxRecordBytesLimit = 256 << 20

// Validate checks that every limit is positive (and MaxRecordBytes at most
// MaxRecordBytesLimit), naming each limit that is not.
func (l Limits) Validate() error {
	var errs []error
	for _, c := range []struct {
		name string
		v    int
	}{
		{"max record bytes", l.MaxRecordBytes}, {"max rule depth", l.MaxRuleDepth},
		{"max rule nodes", l.MaxRuleNodes}, {"max values", l.MaxValues}, {"max tags", l.MaxTags},
	} {
		if c.v <= 0 {
			errs = append(errs, fmt.Errorf("engine: the %s limit must be positive, not %d", c.name, c.v))
		}
	}
	if l.HistoryPerMember < 0 || l.HistoryPerMember > MaxHistoryPerMember {
		errs = append(errs, fmt.Errorf("engine: the history per member must be from 0 to %d, not %d", MaxHistoryPerMember, l.HistoryPerMember))
	}
	if l.MaxRecordBytes > MaxRecordBytesLimit {
		errs = append(errs, fmt.Errorf("engine: the max record bytes limit must be at most %d, not %d", MaxRecordBytesLimit, l.MaxRecordBytes))
	}
	return errors.Join(errs...)
}

// Rule returns the limits rules are compiled with.
func (l Limits) Rule() rule.Limits {
	return rule.Limits{MaxRuleDepth: l.MaxRuleDepth, MaxRuleNodes: l.MaxRuleNodes, MaxValues: l.MaxValues}
}

// DefaultConfig returns the default configuration.
func DefaultConfig() Config {
	return Config{
		Clock:       ClockEvent,
		Limits:      DefaultLimits(),
		PartitionOf: func(string, string) int32 { return 0 },
		Logger:      slog.New(slog.DiscardHandler),
		WallClock:   time.Now,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.Clock < ClockFixed || c.Clock > ClockWall:
		return errors.New("engine: clock must be fixed, event or wall")
	case c.PartitionOf == nil:
		return errors.New("engine: PartitionOf is required")
	case c.Limits.Validate() != nil:
		return c.Limits.Validate()
	case c.Logger == nil || c.WallClock == nil:
		return errors.New("engine: Logger and WallClock are required")
	case c.DeferPartitionWrites && !c.Changelog:
		return errors.New("engine: DeferPartitionWrites requires Changelog")
	}
	return nil
}

// Engine maintains smart-group memberships incrementally. Process, Tick,
// Assign, Ack and Persist are serialized; an error they return is fatal
// for the Engine (its in-memory state may disagree with the store): close
// it and reopen.
type Engine struct {
	mu   sync.Mutex
	st   *state.Store
	cfg  Config
	defs *Defs
	now  rule.Millis

	owned map[int32]bool
	// parts is the in-memory state of loaded partitions (partstate.go):
	// every owned one, and one restored but not yet assigned.
	parts map[int32]*partState
	// postings are the posting lists of loaded partitions, by key.
	postings map[string]*roaring.Bitmap
	nextOut  map[int32]uint64 // next outbox id per partition
	// ownedList caches ownedSorted; nil when the owned set changed.
	ownedList []int32
	// eventsHint is how many events the last committed batch emitted (at
	// most maxEventsHint): the next batch's events start at that capacity.
	eventsHint int
	// unpersisted and overlay are the batches applied to memory and not
	// yet persisted, per partition, and their activity-id writes
	// (DeferPartitionWrites; persist.go).
	unpersisted map[int32][]unpersisted
	overlay     map[int32]map[string]overlayWrite
	defPos      map[posKey]int64 // applied definitions positions read so far

	// free are members to reuse (their decoding buffers); enc encodes
	// member states at commit.
	free        []*member
	enc         stateEncoder
	metrics     *Metrics
	liveGroups  atomic.Int64
	liveMembers atomic.Int64
	timers      atomic.Int64
	// timerLag is how far (ms) the earliest pending timer of owned
	// partitions was behind the clock after the last advance: nonzero
	// while overdue timers are fired over several batches.
	timerLag atomic.Int64
	broken   error
}

const metaNow = "now"

// New opens an engine over a store. It loads the persisted definitions and
// clock. No partition is owned until Assign.
func New(st *state.Store, cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{st: st, cfg: cfg, defs: NewDefs(cfg.Limits), owned: map[int32]bool{}, parts: map[int32]*partState{},
		postings: map[string]*roaring.Bitmap{}, nextOut: map[int32]uint64{}, defPos: map[posKey]int64{},
		unpersisted: map[int32][]unpersisted{}, overlay: map[int32]map[string]overlayWrite{}}
	m, err := newMetrics(cfg.Registerer, e)
	if err != nil {
		return nil, err
	}
	e.metrics = m
	if err := e.loadDefs(); err != nil {
		return nil, err
	}
	e.now = cfg.Now
	if cfg.Clock == ClockEvent {
		if v, ok, err := st.Get(state.MetaKey(metaNow)); err != nil {
			return nil, err
		} else if ok {
			if saved := state.DecodeI64(v); saved > e.now {
				e.now = saved
			}
		}
	}
	if cfg.Clock == ClockWall {
		e.now = cfg.WallClock().UnixMilli()
	}
	e.countGroups()
	return e, nil
}

func (e *Engine) loadDefs() error {
	var loadErr error
	err := e.st.Scan(state.DefPrefix(), state.PrefixEnd(state.DefPrefix()), func(k, v []byte) bool {
		var head struct {
			Kind string `json:"kind"`
		}
		if loadErr = json.Unmarshal(v, &head); loadErr != nil {
			return false
		}
		switch head.Kind {
		case "group":
			var g GroupDef
			loadErr = json.Unmarshal(v, &g)
			e.defs.LoadGroup(&g)
		case "property", "question":
			var s rule.Schema
			loadErr = json.Unmarshal(v, &s)
			e.defs.LoadSchema(&s)
		case "blacklist":
			var b Blacklist
			loadErr = json.Unmarshal(v, &b)
			e.defs.LoadBlacklist(&b)
		default:
			loadErr = fmt.Errorf("unknown definition kind %q", head.Kind)
		}
		return loadErr == nil
	})
	if err == nil {
		err = loadErr
	}
	if err != nil {
		return fmt.Errorf("engine: load definitions: %w", err)
	}
	return e.defs.Finish()
}

func (e *Engine) countGroups() {
	var n int64
	for _, s := range e.defs.spots {
		n += int64(len(s.order))
	}
	e.liveGroups.Store(n)
}

// Defs returns the engine's definitions. Callers must not modify them and
// must hold no reference across Process calls.
func (e *Engine) Defs() *Defs { return e.defs }

// Now returns the engine's current instant.
func (e *Engine) Now() rule.Millis {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

// Result is what one Process, Tick or Assign call produced, in emission
// order, after it was durably committed (under DeferPartitionWrites:
// applied to memory). Outbox lists the outbox entries written;
// acknowledge each with Ack once published (under DeferPartitionWrites,
// the entries of member partitions are not stored: Persist each once its
// output is committed).
type Result struct {
	Events []Event
	// Access are the access changes (SPEC §4.3), in emission order.
	Access      []AccessEvent
	DeadLetters []DeadLetter
	Outbox      []OutboxEntry
	// OldestProduced is the earliest production time of the batch's
	// records (zero when unknown); a runtime observes the event-to-output
	// latency with ObserveLatency once the output is visible.
	OldestProduced time.Time
}

// ObserveLatency records the event-to-output latency of a result whose
// output just became visible to consumers.
func (e *Engine) ObserveLatency(res *Result) {
	if !res.OldestProduced.IsZero() && len(res.Events) > 0 {
		e.metrics.Latency.Observe(time.Since(res.OldestProduced).Seconds())
	}
}

// Assign takes ownership of partitions: their state is loaded into memory
// (unless a restore loaded it already), brought up to date with the
// current definitions (changed groups are backfilled, deleted groups
// emptied) and their timers start firing.
func (e *Engine) Assign(ctx context.Context, parts []int32) (*Result, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.broken != nil {
		return nil, e.broken
	}
	for _, p := range parts {
		if e.parts[p] == nil {
			if err := e.loadPartition(p); err != nil {
				e.broken = fmt.Errorf("engine: unusable after a failed load: %w", err)
				return nil, err
			}
		}
	}
	t := e.begin()
	for _, p := range parts {
		e.owned[p] = true
		e.ownedList = nil
		if err := t.reconcilePartition(p); err != nil {
			return nil, e.fail(t, err)
		}
	}
	if err := e.countPartitions(); err != nil {
		return nil, e.fail(t, err)
	}
	return e.commit(t)
}

// Revoke gives up partitions. Their state stays in the store; its
// in-memory copy is dropped.
func (e *Engine) Revoke(parts []int32) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, p := range parts {
		delete(e.owned, p)
		e.ownedList = nil
		e.forget(p)
	}
	_ = e.countPartitions()
}

// Owned returns the owned partitions in order.
func (e *Engine) Owned() []int32 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.ownedSorted())
}

// ownedSorted returns the owned partitions in order, in a slice the
// caller must not change (kept until the owned set changes).
func (e *Engine) ownedSorted() []int32 {
	if e.ownedList != nil {
		return e.ownedList
	}
	out := make([]int32, 0, len(e.owned))
	for p := range e.owned {
		out = append(out, p)
	}
	slices.Sort(out)
	e.ownedList = out
	return out
}

// countPartitions recounts live members and timers of owned partitions.
func (e *Engine) countPartitions() error {
	var members, timers int64
	for p := range e.owned {
		if ps := e.parts[p]; ps != nil {
			members += ps.liveMembers()
			timers += int64(ps.timers.live)
		}
	}
	e.liveMembers.Store(members)
	e.timers.Store(timers)
	return nil
}

// Process applies a batch of input records in order and commits their
// effects, the input positions and the outbox in one durable batch.
// Invalid records are dead-lettered and change nothing else.
func (e *Engine) Process(ctx context.Context, recs []Record) (*Result, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.broken != nil {
		return nil, e.broken
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	start := time.Now()
	t := e.begin()
	if e.cfg.Clock == ClockWall {
		// The wall clock moves on between ticks too: records are evaluated
		// at the time they are processed (due timers fire first).
		if err := t.advance(e.cfg.WallClock().UnixMilli()); err != nil {
			return nil, e.fail(t, err)
		}
	}
	var oldest time.Time
	for i := range recs {
		rec := &recs[i]
		e.metrics.RecordsConsumed.WithLabelValues(string(rec.Kind)).Inc()
		if !rec.Produced.IsZero() && (oldest.IsZero() || rec.Produced.Before(oldest)) {
			oldest = rec.Produced
		}
		var err error
		if _, known := ParseKind(string(rec.Kind)); rec.Err != "" || !known {
			e := rerr(CodeInvalidInput, "%s", rec.Err)
			if rec.Err == "" {
				e = rerr(CodeUnknownTopic, "unknown input topic %q (profiles, activities, properties, definitions)", rec.Topic)
			}
			t.deadLetter(rec, e)
			if known {
				t.positions[posKey{rec.Kind, rec.Topic, rec.Partition}] = rec.Offset + 1
			}
			continue
		}
		if rec.Kind == KindDefinitions {
			// A runtime may deliver a definition twice (caught up during a
			// rebalance, then tailed): apply each offset once.
			applied, perr := t.definitionApplied(rec)
			if perr != nil {
				return nil, e.fail(t, perr)
			}
			if applied && e.cfg.DefinitionOffsets {
				continue
			}
			err = t.applyDefinition(rec)
		} else {
			if !e.owned[rec.Partition] {
				return nil, e.fail(t, fmt.Errorf("engine: record of partition %d, which is not assigned", rec.Partition))
			}
			err = t.applyMemberRecord(rec)
		}
		if err != nil {
			return nil, e.fail(t, err)
		}
		t.positions[posKey{rec.Kind, rec.Topic, rec.Partition}] = rec.Offset + 1
	}
	res, err := e.commit(t)
	if err != nil {
		return nil, err
	}
	e.metrics.BatchDuration.Observe(time.Since(start).Seconds())
	res.OldestProduced = oldest
	return res, nil
}

// Tick advances a wall clock to the current time and fires due timers.
// With other clocks it fires timers due at the current now (none, normally).
func (e *Engine) Tick(ctx context.Context) (*Result, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.broken != nil {
		return nil, e.broken
	}
	// Unsynced writes fail silently: sync them now and then, so that a
	// full disk stops the engine within a second or so even when no
	// commit follows.
	if err := e.st.SyncIfDue(); err != nil {
		e.broken = fmt.Errorf("engine: unusable after a failed write: %w", err)
		return nil, err
	}
	t := e.begin()
	now := e.now
	if e.cfg.Clock == ClockWall {
		if w := e.cfg.WallClock().UnixMilli(); w > now {
			now = w
		}
	}
	if err := t.advance(now); err != nil {
		return nil, e.fail(t, err)
	}
	return e.commit(t)
}

// NextTimer returns the earliest pending timer instant of owned partitions.
func (e *Engine) NextTimer() (rule.Millis, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var best rule.Millis
	found := false
	for p := range e.owned {
		if ps := e.parts[p]; ps != nil {
			if x, ok := ps.next(); ok && (!found || x.due < best) {
				best, found = x.due, true
			}
		}
	}
	return best, found
}

// Position returns the next offset to read of a topic partition, as
// committed with the state (under DeferPartitionWrites: as persisted); ok
// is false when nothing was committed yet.
func (e *Engine) Position(kind Kind, topic string, partition int32) (int64, bool, error) {
	v, ok, err := e.st.Get(positionKey(posKey{kind, topic, partition}))
	if err != nil || !ok {
		return 0, false, err
	}
	return state.DecodeI64(v), true, nil
}

type posKey struct {
	kind  Kind
	topic string
	part  int32
}

func positionKey(p posKey) []byte {
	if p.kind == KindDefinitions {
		return state.MetaKey(fmt.Sprintf("pos/%s/%d", p.topic, p.part))
	}
	return state.PositionKey(p.part, p.topic)
}

// Pending returns the outbox entries of a partition not yet acknowledged,
// in id order: after a restart they must be published (again) before new
// output of that partition.
func (e *Engine) Pending(part int32) ([]OutboxEntry, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []OutboxEntry
	var decErr error
	p := state.OutboxPrefix(part)
	err := e.st.Scan(p, state.PrefixEnd(p), func(k, v []byte) bool {
		var o OutboxEntry
		if decErr = json.Unmarshal(v, &o); decErr != nil {
			return false
		}
		out = append(out, o)
		return true
	})
	if err == nil {
		err = decErr
	}
	if err != nil {
		return nil, fmt.Errorf("engine: read outbox: %w", err)
	}
	return out, nil
}

// Ack deletes a partition's outbox entries up to and including id, once
// they are published.
func (e *Engine) Ack(part int32, id uint64) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	b := e.st.NewBatch()
	if err := b.DeleteRange(state.OutboxPrefix(part), state.OutboxKey(part, id+1)); err != nil {
		_ = b.Close()
		return err
	}
	if e.cfg.DeferPartitionWrites {
		return b.CommitNoSync()
	}
	return b.Commit()
}

func (e *Engine) fail(t *txn, err error) error {
	_ = t.b.Close()
	e.broken = fmt.Errorf("engine: unusable after a failed batch: %w", err)
	return err
}

// definitionApplied reports whether a definitions record's offset is below
// the position already applied (in this batch or committed).
func (t *txn) definitionApplied(rec *Record) (bool, error) {
	k := posKey{rec.Kind, rec.Topic, rec.Partition}
	if pos, ok := t.positions[k]; ok {
		return rec.Offset < pos, nil
	}
	pos, ok := t.e.defPos[k]
	if !ok {
		v, found, err := t.b.Get(positionKey(k))
		if err != nil {
			return false, err
		}
		pos = -1
		if found {
			pos = state.DecodeI64(v)
		}
		t.e.defPos[k] = pos
	}
	return rec.Offset < pos, nil
}
