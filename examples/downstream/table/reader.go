package table

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	fetchapi "github.com/segmentio/kafka-go/protocol/fetch"
)

// DefaultTopic is the memberships topic with the default prefix.
const DefaultTopic = "smartgroups.memberships"

// DefaultAccessTopic is the access topic with the default prefix.
const DefaultAccessTopic = "smartgroups.access"

// ReaderConfig configures ReadCommitted and Run.
type ReaderConfig struct {
	// Brokers are the seed brokers. Required.
	Brokers []string
	// Topic to read; default DefaultTopic.
	Topic string
	// MaxWait is how long a fetch waits for new records; default 500ms.
	MaxWait time.Duration
	// Transport carries TLS, SASL and dial settings. Nil uses a private
	// transport with kafka-go's defaults, closed when reading ends.
	Transport *kafka.Transport
	// MaxRetries is how many consecutive failed fetches of a partition
	// are retried before giving up; default 20.
	MaxRetries int
}

func (c *ReaderConfig) defaults() error {
	if len(c.Brokers) == 0 {
		return errors.New("table: no brokers")
	}
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	if c.MaxWait <= 0 {
		c.MaxWait = 500 * time.Millisecond
	}
	if c.MaxRetries <= 0 {
		c.MaxRetries = 20
	}
	return nil
}

// ReadCommitted reads every partition of the topic from its start and calls
// fn with each record of a committed transaction (and each
// non-transactional record), in offset order per partition, until ctx is
// done or fn fails. fn runs on one goroutine per partition. It returns nil
// when ctx ends it.
func ReadCommitted(ctx context.Context, cfg ReaderConfig, fn func(Message) error) error {
	if err := cfg.defaults(); err != nil {
		return err
	}
	transport := cfg.Transport
	if transport == nil {
		// A private transport whose connections all close when reading
		// ends: CloseIdleConnections alone leaves a connection with a
		// fetch in flight (kafka-go does not abort it on cancel).
		conns := &connTracker{}
		transport = &kafka.Transport{Dial: conns.dial}
		defer func() {
			conns.closeAll()
			transport.CloseIdleConnections()
		}()
	}
	addr := kafka.TCP(cfg.Brokers...)
	client := &kafka.Client{Addr: addr, Transport: transport}
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{cfg.Topic}})
	if err != nil {
		return fmt.Errorf("table: metadata: %w", err)
	}
	var partitions []int
	for _, t := range meta.Topics {
		if t.Name != cfg.Topic {
			continue
		}
		if t.Error != nil {
			return fmt.Errorf("table: topic %s: %w", cfg.Topic, t.Error)
		}
		for _, p := range t.Partitions {
			partitions = append(partitions, p.ID)
		}
	}
	if len(partitions) == 0 {
		return fmt.Errorf("table: topic %s has no partitions", cfg.Topic)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for _, p := range partitions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := readPartition(ctx, cfg, transport, addr, p, fn); err != nil && ctx.Err() == nil {
				errOnce.Do(func() { firstErr = err; cancel() })
			}
		}()
	}
	wg.Wait()
	return firstErr
}

func readPartition(ctx context.Context, cfg ReaderConfig, transport *kafka.Transport, addr net.Addr, partition int, fn func(Message) error) error {
	var off int64
	failures := 0
	retry := func(err error) error {
		failures++
		if failures > cfg.MaxRetries {
			return fmt.Errorf("table: fetching %s/%d: %w", cfg.Topic, partition, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(min(time.Duration(failures)*100*time.Millisecond, 2*time.Second)):
		}
		return nil
	}
	for ctx.Err() == nil {
		req := &fetchapi.Request{
			ReplicaID:      -1,
			MaxWaitTime:    int32(cfg.MaxWait / time.Millisecond),
			MinBytes:       1,
			MaxBytes:       16 << 20,
			IsolationLevel: int8(kafka.ReadCommitted),
			SessionEpoch:   -1, // no fetch session
			Topics: []fetchapi.RequestTopic{{
				Topic: cfg.Topic,
				Partitions: []fetchapi.RequestPartition{{
					Partition:          int32(partition),
					CurrentLeaderEpoch: -1,
					FetchOffset:        off,
					LogStartOffset:     -1,
					PartitionMaxBytes:  8 << 20,
				}},
			}},
		}
		msg, err := transport.RoundTrip(ctx, addr, req)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if rerr := retry(err); rerr != nil {
				return rerr
			}
			continue
		}
		resp, ok := msg.(*fetchapi.Response)
		if !ok {
			return fmt.Errorf("table: unexpected fetch response %T", msg)
		}
		part := findPartition(resp, cfg.Topic, partition)
		if part == nil {
			if rerr := retry(errors.New("partition missing from the fetch response")); rerr != nil {
				return rerr
			}
			continue
		}
		if part.ErrorCode != 0 {
			kerr := kafka.Error(part.ErrorCode)
			if errors.Is(kerr, kafka.OffsetOutOfRange) && off < part.LogStartOffset {
				off = part.LogStartOffset // retention moved the start
				continue
			}
			if rerr := retry(kerr); rerr != nil {
				return rerr
			}
			continue
		}
		failures = 0

		next, err := committedRecords(cfg.Topic, partition, part, off, fn)
		if err != nil {
			return err
		}
		if next > off {
			off = next
			continue
		}
		// Nothing readable at off but the stable end is further: the
		// rest up to it was compacted away.
		if off < part.LastStableOffset && resp.ThrottleTimeMs == 0 {
			off = part.LastStableOffset
		}
	}
	return nil
}

func findPartition(resp *fetchapi.Response, topic string, partition int) *fetchapi.ResponsePartition {
	for i := range resp.Topics {
		if resp.Topics[i].Topic != topic {
			continue
		}
		for j := range resp.Topics[i].Partitions {
			if p := &resp.Topics[i].Partitions[j]; int(p.Partition) == partition {
				return p
			}
		}
	}
	return nil
}

// controlAbort is the type (second int16 of the key) of an abort marker;
// a commit marker has type 1.
const controlAbort = 0

// committedRecords passes the committed records at or after from of one
// fetched partition to fn and returns the offset to fetch next. It applies
// the read_committed filter of the Kafka protocol, which the client must do:
// the broker lists, per response, the aborted transactions overlapping it
// (producer id, first offset). A transactional data batch whose producer has
// an aborted transaction starting at or before the batch is dropped, until
// that producer's abort marker; control batches (commit and abort markers)
// are never returned.
func committedRecords(topic string, partition int, part *fetchapi.ResponsePartition, from int64, fn func(Message) error) (int64, error) {
	next := from
	stream, ok := part.RecordSet.Records.(*protocol.RecordStream)
	if !ok || stream == nil {
		if part.RecordSet.Records == nil {
			return next, nil
		}
		// A single reader (not a stream) carries no batch details.
		stream = &protocol.RecordStream{Records: []protocol.RecordReader{part.RecordSet.Records}}
	}

	txns := append([]fetchapi.ResponseTransaction(nil), part.AbortedTransactions...)
	sort.Slice(txns, func(i, j int) bool { return txns[i].FirstOffset < txns[j].FirstOffset })
	aborted := make(map[int64]bool)
	addAbortedUpTo := func(offset int64) {
		for len(txns) > 0 && txns[0].FirstOffset <= offset {
			aborted[txns[0].ProducerID] = true
			txns = txns[1:]
		}
	}

	for _, batch := range stream.Records {
		switch b := batch.(type) {
		case *protocol.ControlBatch:
			addAbortedUpTo(b.BaseOffset)
			for {
				cr, err := b.ReadControlRecord()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					return next, fmt.Errorf("table: control record of %s/%d: %w", topic, partition, err)
				}
				next = max(next, cr.Offset+1)
				if cr.Type == controlAbort {
					delete(aborted, b.ProducerID)
				}
			}

		case *protocol.RecordBatch:
			skip := false
			if b.Attributes.Transactional() {
				addAbortedUpTo(b.BaseOffset)
				skip = aborted[b.ProducerID]
			}
			n, err := emit(topic, partition, b, from, skip, fn)
			next = max(next, n)
			if err != nil {
				return next, err
			}

		default: // v0/v1 message sets: no transactions
			n, err := emit(topic, partition, batch, from, false, fn)
			next = max(next, n)
			if err != nil {
				return next, err
			}
		}
	}
	return next, nil
}

// emit reads the records of one batch, passing those at or after from to fn
// unless skip, and returns the offset after the last record.
func emit(topic string, partition int, rr protocol.RecordReader, from int64, skip bool, fn func(Message) error) (int64, error) {
	next := from
	for {
		r, err := rr.ReadRecord()
		if errors.Is(err, io.EOF) {
			return next, nil
		}
		if err != nil {
			return next, fmt.Errorf("table: reading %s/%d: %w", topic, partition, err)
		}
		key, kerr := protocol.ReadAll(r.Key)
		value, verr := protocol.ReadAll(r.Value)
		closeBytes(r.Key)
		closeBytes(r.Value)
		if err := errors.Join(kerr, verr); err != nil {
			return next, fmt.Errorf("table: reading %s/%d@%d: %w", topic, partition, r.Offset, err)
		}
		if r.Offset < from {
			continue
		}
		next = r.Offset + 1
		if skip {
			continue
		}
		if err := fn(Message{Topic: topic, Partition: partition, Offset: r.Offset, Key: key, Value: value, Time: r.Time}); err != nil {
			return next, err
		}
	}
}

func closeBytes(b protocol.Bytes) {
	if b != nil {
		_ = b.Close()
	}
}

// Run reads the topic into t (see ReadCommitted) until ctx is done. onChange
// and onViolation, when not nil, are called for every applied event and
// every violation, from the partition goroutines.
func Run(ctx context.Context, cfg ReaderConfig, t *Table, onChange func(Change), onViolation func(Violation)) error {
	return ReadCommitted(ctx, cfg, func(m Message) error {
		c, vs := t.Apply(m)
		if onViolation != nil {
			for _, v := range vs {
				onViolation(v)
			}
		}
		if c != nil && onChange != nil {
			onChange(*c)
		}
		return nil
	})
}

// connTracker dials and remembers connections so that they can be closed.
type connTracker struct {
	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

func (c *connTracker) dial(ctx context.Context, network, address string) (net.Conn, error) {
	conn, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		_ = conn.Close()
		return nil, net.ErrClosed
	}
	c.conns = append(c.conns, conn)
	return conn, nil
}

func (c *connTracker) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for _, conn := range c.conns {
		_ = conn.Close()
	}
	c.conns = nil
}
