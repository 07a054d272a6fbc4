package kafka

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/smartgroups/smartgroups/engine"
)

// Publisher errors.
var (
	// ErrNotAcquired is returned by Publish for a partition that was not
	// acquired, was released, or whose last Publish failed.
	ErrNotAcquired = errors.New("kafka: partition not acquired by the publisher")
	// ErrPublisherClosed is returned after Close.
	ErrPublisherClosed = errors.New("kafka: publisher closed")
	// ErrOutcomeUnknown wraps a commit error after which Kafka may or may
	// not have committed the transaction. Acquire the partition again: the
	// outbox id it returns tells what was published.
	ErrOutcomeUnknown = errors.New("kafka: transaction outcome unknown")
	// ErrTakenOver is returned by Recover when another publisher wrote to
	// the partition since this one last did.
	ErrTakenOver = errors.New("kafka: partition published by another publisher meanwhile")
)

// Batch is what one Publish call writes: the outbox entries of one input
// partition, through outbox id OutboxID.
type Batch struct {
	// Partition is the input partition whose outbox this is, or
	// engine.DefPartition for the outbox of the definitions topic (its
	// dead letters).
	Partition int32
	// Events go to the memberships topic, keyed Event.Key(), in order.
	Events []engine.Event
	// Access go to the access topic, keyed AccessEvent.Key(), in order.
	Access []engine.AccessEvent
	// DeadLetters go to the dead-letter topic, keyed by the original key.
	DeadLetters []engine.DeadLetter
	// Changelog is the partition's state changes, written to the changelog
	// topic partition Partition (compacted; a delete is a tombstone).
	Changelog []engine.ChangelogEntry
	// DefinitionTombstones are definitions keys to delete on the
	// definitions topic (blacklist entries of an erased member).
	DefinitionTombstones []string
	// OutboxID is the id of the last outbox entry in the batch. Ids are
	// per partition and instance and increase; the marker records it.
	OutboxID uint64
}

// ProgressMarker is the value of a progress record: input partition
// Partition is published through outbox id OutboxID. Its key is the decimal
// partition number and it lives in progress partition Partition (partition
// 0 for engine.DefPartition, -1).
type ProgressMarker struct {
	Partition int32  `json:"partition"`
	OutboxID  uint64 `json:"outbox_id"`
	// Instance identifies the engine store that published it.
	Instance string `json:"instance,omitempty"`
	// Run identifies the Publisher that wrote it (random per
	// NewPublisher): outbox ids only increase within one run, so they
	// are only comparable between markers of the same run.
	Run string `json:"run,omitempty"`
}

// Committed describes a committed Publish.
type Committed struct {
	// ChangelogOffset is the offset of the batch's last changelog record,
	// -1 when it had none (or Publish skipped it).
	ChangelogOffset int64
	// ChangelogTime is that record's timestamp.
	ChangelogTime time.Time
}

// Dead-letter record headers.
const (
	HeaderTopic     = "topic"
	HeaderPartition = "partition"
	HeaderOffset    = "offset"
	HeaderReason    = "reason"
	HeaderCode      = "code"
	// HeaderSize and HeaderSHA256 are set only on the dead letter of a
	// record over the size limit (code too_large), whose value holds the
	// first 64 KiB of the record: the whole value's size in bytes and its
	// hex SHA-256, as in the value's "size" and "sha256" fields.
	HeaderSize   = "size"
	HeaderSHA256 = "sha256"
	// HeaderErasure marks the tombstones the engine writes to the
	// definitions topic for the blacklist entries of an erased member:
	// a consequence of the erasure record, which a replay applies itself,
	// so a replay skips them.
	HeaderErasure = "smartgroups-erasure"
)

// Publisher publishes outbox batches exactly once (SPEC §4.2): each Batch is
// one Kafka transaction holding the batch's events, its dead letters and the
// progress marker of its partition, so the records and "published through N"
// become visible to read_committed consumers together or not at all.
//
// Every input partition has its own transactional producer, with
// transactional id Config.TransactionalID(partition). The definitions
// pseudo-partition engine.DefPartition is published like a partition; give
// it to one instance only (say, the owner of partition 0), or instances
// acquiring it fence each other in turn. Acquire initializes
// it, which fences any other producer of that id (a previous owner of the
// partition that is still running) and aborts its open transaction; only
// then does it read the partition's progress, which therefore cannot change
// behind the new owner's back.
//
// Publish calls for one partition are serialized; different partitions
// publish concurrently.
type Publisher struct {
	cfg      Config
	instance string
	run      string
	base     []kgo.Opt
	metrics  *Metrics
	reader   *kgo.Client // non-transactional, for reading progress

	mu        sync.Mutex
	closed    bool
	producers map[int32]*partitionProducer
	// known is the last marker known committed per partition (read by
	// Acquire, written by Publish), for Recover.
	known map[int32]ProgressMarker
}

type partitionProducer struct {
	mu     sync.Mutex // serializes Publish and Release
	cl     *kgo.Client
	last   uint64 // last outbox id known committed
	broken bool   // closed after an error or a release
}

// NewPublisher creates a Publisher for the engine store identified by
// instance (written in every progress marker). Extra kgo options (a
// logger, say) are applied to every client it creates. m may be nil.
func NewPublisher(cfg Config, instance string, m *Metrics, opts ...kgo.Opt) (*Publisher, error) {
	base, err := cfg.validClientOpts(opts)
	if err != nil {
		return nil, err
	}
	var run [8]byte
	if _, err := rand.Read(run[:]); err != nil {
		return nil, fmt.Errorf("kafka: publisher run id: %w", err)
	}
	reader, err := kgo.NewClient(m.clientOpts(base, cfg.ClientID+"-progress")...)
	if err != nil {
		return nil, fmt.Errorf("kafka: creating progress reader: %w", err)
	}
	return &Publisher{
		cfg:       cfg,
		instance:  instance,
		run:       hex.EncodeToString(run[:]),
		known:     make(map[int32]ProgressMarker),
		base:      base,
		metrics:   m,
		reader:    reader,
		producers: make(map[int32]*partitionProducer),
	}, nil
}

// Acquire takes over publishing for an input partition: it fences every
// other producer of the partition's transactional id, waits for their open
// transaction to be aborted, and returns the partition's last committed
// progress marker (zero when none was). Nothing committed can change
// behind the caller's back afterwards: restore the partition's state from
// the changelog now. Acquiring an acquired partition starts over with a
// new producer.
func (p *Publisher) Acquire(ctx context.Context, partition int32) (ProgressMarker, error) {
	var none ProgressMarker
	if partition < 0 && partition != engine.DefPartition {
		return none, fmt.Errorf("kafka: invalid partition %d", partition)
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return none, ErrPublisherClosed
	}
	old := p.producers[partition]
	delete(p.producers, partition)
	p.mu.Unlock()
	if old != nil {
		old.close()
	}

	opts := p.metrics.clientOpts(p.base, fmt.Sprintf("%s-publisher-p%d", p.cfg.ClientID, partition),
		kgo.TransactionalID(p.cfg.TransactionalID(partition)),
		kgo.TransactionTimeout(p.cfg.TransactionTimeout),
		kgo.RecordDeliveryTimeout(p.cfg.TransactionTimeout),
		// The broker aborts a transaction older than its timeout: retrying
		// a request of one for longer is useless (kgo's default is 30s).
		kgo.RetryTimeout(p.cfg.TransactionTimeout),
		kgo.RecordPartitioner(outputPartitioner{progress: p.cfg.ProgressTopic(), changelog: p.cfg.ChangelogTopic(),
			definitions: p.cfg.Topic(engine.KindDefinitions)}),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return none, fmt.Errorf("kafka: creating producer for partition %d: %w", partition, err)
	}
	// InitProducerID bumps the epoch of the transactional id: older
	// producers are fenced and their open transaction is aborted.
	if _, _, err := cl.ProducerID(ctx); err != nil {
		cl.Close()
		return none, fmt.Errorf("kafka: initializing producer for partition %d: %w", partition, err)
	}
	marker, _, err := p.readProgress(ctx, partition)
	if err != nil {
		cl.Close()
		return none, err
	}
	last := marker.OutboxID
	if marker.Instance != p.instance || marker.Run != p.run {
		last = 0 // another publisher's ids say nothing about ours
	}

	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		cl.Close()
		return none, ErrPublisherClosed
	}
	other := p.producers[partition]
	p.producers[partition] = &partitionProducer{cl: cl, last: last}
	p.known[partition] = marker
	p.mu.Unlock()
	if other != nil {
		// A concurrent Acquire of the same partition got there first;
		// ours fenced its producer, so it is useless now.
		other.close()
	}
	return marker, nil
}

// Release stops publishing for a partition (for example when it is revoked)
// and closes its producer. It waits for an in-flight Publish.
func (p *Publisher) Release(partition int32) {
	p.mu.Lock()
	pp := p.producers[partition]
	delete(p.producers, partition)
	p.mu.Unlock()
	if pp != nil {
		pp.close()
	}
}

// Published returns the last outbox id committed for an acquired partition.
func (p *Publisher) Published(partition int32) (uint64, bool) {
	p.mu.Lock()
	pp := p.producers[partition]
	p.mu.Unlock()
	if pp == nil {
		return 0, false
	}
	pp.mu.Lock()
	defer pp.mu.Unlock()
	return pp.last, !pp.broken
}

// Publish writes one batch in one transaction and returns once it
// committed, with the offset of the batch's last changelog record. A batch
// ending at or below the last outbox id this Publisher committed for the
// partition was published already and is skipped (nil error, offset -1).
//
// On any error the transaction is aborted when possible and the partition's
// producer is dropped: Recover tells whether the batch committed (or
// Acquire the partition again). Errors wrap the Kafka error, so
// errors.Is(err, kerr.ProducerFenced) tells that another instance now owns
// the partition.
func (p *Publisher) Publish(ctx context.Context, b Batch) (Committed, error) {
	none := Committed{ChangelogOffset: -1}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return none, ErrPublisherClosed
	}
	pp := p.producers[b.Partition]
	p.mu.Unlock()
	if pp == nil {
		return none, fmt.Errorf("%w: partition %d", ErrNotAcquired, b.Partition)
	}

	pp.mu.Lock()
	defer pp.mu.Unlock()
	if pp.broken {
		return none, fmt.Errorf("%w: partition %d", ErrNotAcquired, b.Partition)
	}
	if b.OutboxID <= pp.last {
		return none, nil
	}
	recs, err := p.records(b)
	if err != nil {
		return none, err // nothing started; the producer stays usable
	}
	c, err := p.transact(ctx, pp.cl, recs)
	if err != nil {
		pp.broken = true
		pp.cl.Close()
		p.mu.Lock()
		if p.producers[b.Partition] == pp {
			delete(p.producers, b.Partition)
		}
		p.mu.Unlock()
		return none, fmt.Errorf("kafka: publishing partition %d through outbox id %d: %w", b.Partition, b.OutboxID, err)
	}
	pp.last = b.OutboxID
	p.mu.Lock()
	p.known[b.Partition] = ProgressMarker{Partition: b.Partition, OutboxID: b.OutboxID, Instance: p.instance, Run: p.run}
	p.mu.Unlock()
	return c, nil
}

// Recover finds out, after Publish(b) failed, whether b committed. It
// acquires the partition again (fencing, so nothing can commit any more
// behind it) and reads its last marker: b's marker means b committed
// (true); the marker known before b means it did not and nobody else
// published since (false: b may be published again); any other marker
// means another publisher owned the partition meanwhile (ErrTakenOver).
func (p *Publisher) Recover(ctx context.Context, b Batch) (bool, error) {
	p.mu.Lock()
	before, ok := p.known[b.Partition]
	p.mu.Unlock()
	if !ok {
		return false, fmt.Errorf("%w: partition %d", ErrNotAcquired, b.Partition)
	}
	marker, err := p.Acquire(ctx, b.Partition)
	if err != nil {
		return false, err
	}
	switch marker {
	case ProgressMarker{Partition: b.Partition, OutboxID: b.OutboxID, Instance: p.instance, Run: p.run}:
		return true, nil
	case before:
		return false, nil
	}
	return false, fmt.Errorf("%w: partition %d, last published by instance %q", ErrTakenOver, b.Partition, marker.Instance)
}

// transact produces recs in one transaction and commits it, or aborts it.
// It returns the offset and time of the last changelog record.
func (p *Publisher) transact(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) (Committed, error) {
	c := Committed{ChangelogOffset: -1}
	if err := cl.BeginTransaction(); err != nil {
		return c, err
	}
	var (
		errMu     sync.Mutex
		firstErr  error
		wg        sync.WaitGroup
		changelog = p.cfg.ChangelogTopic()
	)
	wg.Add(len(recs))
	for _, r := range recs {
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			defer wg.Done()
			errMu.Lock()
			defer errMu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("producing to %s: %w", r.Topic, err)
				}
				return
			}
			if r.Topic == changelog && r.Offset > c.ChangelogOffset {
				c.ChangelogOffset, c.ChangelogTime = r.Offset, r.Timestamp
			}
		})
	}
	flushErr := cl.Flush(ctx)
	if flushErr == nil {
		// Flush returned: every promise has run. Wait anyway so that
		// firstErr is final even if that ever changes.
		wg.Wait()
	}

	// EndTransaction must not be interrupted halfway: use a context
	// that outlives ctx but still ends.
	endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.TransactionTimeout+10*time.Second)
	defer cancel()

	errMu.Lock()
	produceErr := firstErr
	errMu.Unlock()
	if produceErr == nil && flushErr != nil {
		produceErr = fmt.Errorf("flushing: %w", flushErr)
	}
	if produceErr != nil {
		// kgo commits whatever was produced successfully: never
		// commit a transaction with a failed record.
		abortErr := cl.AbortBufferedRecords(endCtx)
		if abortErr == nil {
			wg.Wait() // every record has its final result now
		}
		if err := cl.EndTransaction(endCtx, kgo.TryAbort); err != nil && abortErr == nil {
			abortErr = err
		}
		p.metrics.transaction(false)
		if abortErr != nil {
			return c, fmt.Errorf("%w (and aborting: %w)", produceErr, abortErr)
		}
		return c, produceErr
	}

	if err := cl.EndTransaction(endCtx, kgo.TryCommit); err != nil {
		// Retry with TryAbort as kgo documents; the outcome of the
		// commit attempt is still unknown to us.
		_ = cl.EndTransaction(endCtx, kgo.TryAbort)
		p.metrics.transaction(false)
		return c, fmt.Errorf("%w: committing: %w", ErrOutcomeUnknown, err)
	}
	p.metrics.transaction(true)
	errMu.Lock()
	defer errMu.Unlock()
	return c, nil
}

// records builds the output records of a batch: events, access events,
// dead letters, then the progress marker.
func (p *Publisher) records(b Batch) ([]*kgo.Record, error) {
	recs := make([]*kgo.Record, 0, len(b.Events)+len(b.Access)+len(b.DeadLetters)+len(b.Changelog)+len(b.DefinitionTombstones)+1)
	for i := range b.Events {
		e := &b.Events[i]
		recs = append(recs, &kgo.Record{Topic: p.cfg.MembershipsTopic(), Key: []byte(e.Key()), Value: engine.AppendEventJSON(nil, e)})
	}
	for i := range b.Access {
		a := &b.Access[i]
		recs = append(recs, &kgo.Record{Topic: p.cfg.AccessTopic(), Key: []byte(a.Key()), Value: engine.AppendAccessEventJSON(nil, a)})
	}
	for _, d := range b.DeadLetters {
		recs = append(recs, DeadLetterRecord(p.cfg.DeadLetterTopic(), d))
	}
	for _, c := range b.Changelog {
		recs = append(recs, ChangelogRecord(p.cfg.ChangelogTopic(), b.Partition, c))
	}
	for _, k := range b.DefinitionTombstones {
		recs = append(recs, &kgo.Record{Topic: p.cfg.Topic(engine.KindDefinitions), Partition: 0, Key: []byte(k),
			Headers: []kgo.RecordHeader{{Key: HeaderErasure, Value: []byte("1")}}})
	}
	marker, err := json.Marshal(ProgressMarker{Partition: b.Partition, OutboxID: b.OutboxID, Instance: p.instance, Run: p.run})
	if err != nil {
		return nil, err
	}
	recs = append(recs, &kgo.Record{
		Topic:     p.cfg.ProgressTopic(),
		Partition: progressPartition(b.Partition),
		Key:       []byte(strconv.Itoa(int(b.Partition))),
		Value:     marker,
	})
	return recs, nil
}

// DeadLetterRecord builds the dead-letter record of d: key = the original
// key (nil when it was empty), value = JSON of d, headers topic, partition,
// offset, reason and code, and size and sha256 when d's value is truncated.
func DeadLetterRecord(topic string, d engine.DeadLetter) *kgo.Record {
	v := engine.AppendDeadLetterJSON(nil, &d)
	var key []byte
	if d.Key != "" {
		key = []byte(d.Key)
	}
	headers := []kgo.RecordHeader{
		{Key: HeaderTopic, Value: []byte(d.Topic)},
		{Key: HeaderPartition, Value: []byte(strconv.Itoa(int(d.Partition)))},
		{Key: HeaderOffset, Value: []byte(strconv.FormatInt(d.Offset, 10))},
		{Key: HeaderReason, Value: []byte(d.Reason)},
		{Key: HeaderCode, Value: []byte(d.Code)},
	}
	if d.Size != 0 {
		headers = append(headers, kgo.RecordHeader{Key: HeaderSize, Value: []byte(strconv.FormatInt(d.Size, 10))})
	}
	if d.SHA256 != "" {
		headers = append(headers, kgo.RecordHeader{Key: HeaderSHA256, Value: []byte(d.SHA256)})
	}
	return &kgo.Record{Topic: topic, Key: key, Value: v, Headers: headers}
}

// ReadProgress reads the whole progress topic read_committed and returns
// the last published outbox id per input partition. It is a snapshot: a
// partition another instance is publishing can move on right after. To take
// a partition over, use Acquire, which fences first.
func (p *Publisher) ReadProgress(ctx context.Context) (map[int32]uint64, error) {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return nil, ErrPublisherClosed
	}
	return ReadProgress(ctx, p.reader, p.cfg)
}

// ReadProgress is Publisher.ReadProgress with any client.
func ReadProgress(ctx context.Context, cl *kgo.Client, cfg Config) (map[int32]uint64, error) {
	parts, err := partitionCount(ctx, cl, cfg.ProgressTopic())
	if err != nil {
		return nil, err
	}
	out := make(map[int32]uint64)
	for part := range parts {
		err := readProgressPartition(ctx, cl, cfg.ProgressTopic(), part, func(m ProgressMarker) {
			out[m.Partition] = m.OutboxID
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (p *Publisher) readProgress(ctx context.Context, partition int32) (ProgressMarker, bool, error) {
	var (
		last  ProgressMarker
		found bool
	)
	err := readProgressPartition(ctx, p.reader, p.cfg.ProgressTopic(), progressPartition(partition), func(m ProgressMarker) {
		if m.Partition == partition {
			last, found = m, true
		}
	})
	return last, found, err
}

// ChangelogRecord builds the changelog record of a state change: the key
// is the state key, the value the state value prefixed with 'v' (so an
// empty value is not a tombstone), nil for a delete.
func ChangelogRecord(topic string, partition int32, c engine.ChangelogEntry) *kgo.Record {
	r := &kgo.Record{Topic: topic, Partition: partition, Key: c.Key}
	if !c.Delete {
		r.Value = append([]byte{'v'}, c.Value...)
	}
	return r
}

// ChangelogEnd returns the end offset (high watermark) of a partition's
// changelog.
func (p *Publisher) ChangelogEnd(ctx context.Context, partition int32) (int64, error) {
	topic := p.cfg.ChangelogTopic()
	offs, err := kadm.NewClient(p.reader).ListEndOffsets(fresh(ctx), topic)
	if err != nil {
		return 0, fmt.Errorf("kafka: end offsets of %s: %w", topic, err)
	}
	o, ok := offs.Lookup(topic, partition)
	if !ok {
		return 0, fmt.Errorf("kafka: topic %s has no partition %d", topic, partition)
	}
	if o.Err != nil {
		return 0, fmt.Errorf("kafka: end offset of %s/%d: %w", topic, partition, o.Err)
	}
	return o.Offset, nil
}

// ReadChangelog reads a partition's changelog from offset from (negative:
// its start) to its end, read_committed, and calls fn with chunks of
// entries in order, oldest first; through is the offset and timestamp of
// the chunk's last record (engine.NoSnapshotTag for an empty chunk).
// remaining is an estimate of the records left, for progress.
func (p *Publisher) ReadChangelog(ctx context.Context, partition int32, from int64,
	fn func(entries []engine.ChangelogEntry, through engine.SnapshotTag, remaining int64) error) error {
	var chunk []engine.ChangelogEntry
	through := engine.NoSnapshotTag
	var hwm int64 = -1
	if offs, err := kadm.NewClient(p.reader).ListEndOffsets(fresh(ctx), p.cfg.ChangelogTopic()); err == nil {
		if o, ok := offs.Lookup(p.cfg.ChangelogTopic(), partition); ok && o.Err == nil {
			hwm = o.Offset
		}
	}
	_, err := readPartitionToEnd(ctx, p.reader, p.cfg.ChangelogTopic(), partition, from, func(r *kgo.Record) error {
		e := engine.ChangelogEntry{Key: append([]byte(nil), r.Key...)}
		if r.Value == nil {
			e.Delete = true
		} else {
			if len(r.Value) == 0 || r.Value[0] != 'v' {
				return fmt.Errorf("kafka: changelog record %d/%d has a malformed value", partition, r.Offset)
			}
			e.Value = append([]byte(nil), r.Value[1:]...)
		}
		chunk = append(chunk, e)
		through = engine.SnapshotTag{Offset: r.Offset, Time: r.Timestamp}
		if len(chunk) >= 4096 {
			rem := int64(0)
			if hwm > r.Offset {
				rem = hwm - r.Offset - 1
			}
			if err := fn(chunk, through, rem); err != nil {
				return err
			}
			chunk, through = nil, engine.NoSnapshotTag
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("kafka: reading changelog partition %d: %w", partition, err)
	}
	return fn(chunk, through, 0)
}

// readProgressPartition reads one progress partition and calls fn for every
// marker in order.
func readProgressPartition(ctx context.Context, cl *kgo.Client, topic string, part int32, fn func(ProgressMarker)) error {
	_, err := readPartitionToEnd(ctx, cl, topic, part, -1, func(r *kgo.Record) error {
		if r.Value == nil {
			return nil // a tombstone: someone reset the partition's progress
		}
		var m ProgressMarker
		if err := json.Unmarshal(r.Value, &m); err != nil {
			return fmt.Errorf("kafka: progress record %s/%d@%d: %w", topic, part, r.Offset, err)
		}
		fn(m)
		return nil
	})
	if err != nil {
		return fmt.Errorf("kafka: reading progress: %w", err)
	}
	return nil
}

func partitionCount(ctx context.Context, cl *kgo.Client, topic string) (int32, error) {
	adm := kadm.NewClient(cl)
	details, err := adm.ListTopics(fresh(ctx), topic)
	if err != nil {
		return 0, fmt.Errorf("kafka: listing %s: %w", topic, err)
	}
	d, ok := details[topic]
	if !ok || d.Err != nil {
		if ok {
			err = d.Err
		}
		if err == nil {
			err = kerr.UnknownTopicOrPartition
		}
		return 0, fmt.Errorf("kafka: topic %s: %w", topic, err)
	}
	return int32(len(d.Partitions)), nil
}

// Close releases every partition and closes the Publisher's clients.
func (p *Publisher) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	pps := p.producers
	p.producers = nil
	p.mu.Unlock()
	for _, pp := range pps {
		pp.close()
	}
	p.reader.Close()
}

func (pp *partitionProducer) close() {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	if !pp.broken {
		pp.broken = true
		pp.cl.Close()
	}
}

// outputPartitioner hashes keys like the Java client (murmur2), except on
// the progress topic, where a record goes to the partition it names.
type outputPartitioner struct{ progress, changelog, definitions string }

func (o outputPartitioner) ForTopic(t string) kgo.TopicPartitioner {
	if t == o.progress || t == o.changelog || t == o.definitions {
		return kgo.ManualPartitioner().ForTopic(t)
	}
	return kgo.StickyKeyPartitioner(nil).ForTopic(t)
}
