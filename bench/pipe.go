package bench

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// PipeConfig describes the I/O floor of the engine's work, measured by
// PipeCeiling.
type PipeConfig struct {
	// ClientOpts connect to the broker (TLS, SASL, brokers).
	ClientOpts []kgo.Opt
	// From are the partitions to read and their first offsets.
	From map[string]map[int32]int64
	// Records is how many input records to read.
	Records int
	// EventsPerRecord is how many output records to write per input
	// record (the engine's events_per_record).
	EventsPerRecord float64
	// EventBytes is the size of an output record's value (the engine's
	// mean membership event).
	EventBytes int
	// Topic receives the output records.
	Topic string
	// TransactionalID is the producer's transactional id.
	TransactionalID string
	// PerTransaction is how many input records one transaction covers.
	// Default 1,000.
	PerTransaction int
}

// PipeCeiling consumes input records with franz-go and, per PerTransaction
// input records, publishes EventsPerRecord × PerTransaction records of
// EventBytes bytes in one transaction: the floor of reading the input and
// writing the output exactly once on this machine, with no engine in
// between. It returns the input records per second.
func PipeCeiling(ctx context.Context, c PipeConfig) (float64, error) {
	if c.Records <= 0 {
		return 0, errors.New("bench: pipe ceiling: no records to read")
	}
	per := c.PerTransaction
	if per <= 0 {
		per = 1000
	}
	parts := map[string]map[int32]kgo.Offset{}
	for topic, ps := range c.From {
		parts[topic] = map[int32]kgo.Offset{}
		for p, off := range ps {
			parts[topic][p] = kgo.NewOffset().At(off)
		}
	}
	cons, err := kgo.NewClient(append(c.ClientOpts[:len(c.ClientOpts):len(c.ClientOpts)], kgo.ConsumePartitions(parts),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))...)
	if err != nil {
		return 0, fmt.Errorf("bench: pipe ceiling consumer: %w", err)
	}
	defer cons.Close()
	prod, err := kgo.NewClient(append(c.ClientOpts[:len(c.ClientOpts):len(c.ClientOpts)], kgo.TransactionalID(c.TransactionalID),
		kgo.DefaultProduceTopic(c.Topic), kgo.ProducerLinger(0), kgo.MaxBufferedRecords(1_000_000))...)
	if err != nil {
		return 0, fmt.Errorf("bench: pipe ceiling producer: %w", err)
	}
	defer prod.Close()
	value := make([]byte, max(c.EventBytes, 1))
	for i := range value {
		value[i] = 'x'
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	start := time.Now()
	got, owed, key := 0, 0.0, 0
	pending := 0
	flush := func() error {
		if pending == 0 {
			return nil
		}
		if err := prod.BeginTransaction(); err != nil {
			return err
		}
		owed += c.EventsPerRecord * float64(pending)
		var produceErr atomic.Pointer[error]
		for ; owed >= 1; owed-- {
			key++
			prod.Produce(ctx, &kgo.Record{Key: fmt.Appendf(nil, "k%d", key%100_000), Value: value}, func(_ *kgo.Record, err error) {
				if err != nil {
					produceErr.CompareAndSwap(nil, &err)
				}
			})
		}
		if err := prod.Flush(ctx); err != nil {
			return err
		}
		commit := kgo.TryCommit
		if produceErr.Load() != nil {
			commit = kgo.TryAbort
		}
		if err := prod.EndTransaction(ctx, commit); err != nil {
			return err
		}
		pending = 0
		if e := produceErr.Load(); e != nil {
			return *e
		}
		return nil
	}
	for got < c.Records {
		fs := cons.PollRecords(ctx, per-pending)
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("bench: pipe ceiling read %d of %d records: %w", got, c.Records, err)
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return 0, ferr
		}
		n := min(fs.NumRecords(), c.Records-got)
		got += n
		pending += n
		if pending >= per || got >= c.Records {
			if err := flush(); err != nil {
				return 0, fmt.Errorf("bench: pipe ceiling transaction: %w", err)
			}
		}
	}
	return float64(got) / time.Since(start).Seconds(), nil
}

// pipe measures the pipe ceiling over the live stream, with serve's events
// per record and mean event size.
func (r *runner) pipe(ctx context.Context) error {
	size, err := r.meanEventBytes(ctx)
	if err != nil {
		return err
	}
	opts, err := r.kc.ClientOpts()
	if err != nil {
		return err
	}
	topic := r.kc.TopicPrefix + "pipe"
	cl, err := r.client()
	if err != nil {
		return err
	}
	_, err = kadm.NewClient(cl).CreateTopic(ctx, r.kc.Partitions, -1, nil, topic)
	cl.Close()
	if err != nil {
		return fmt.Errorf("create %s: %w", topic, err)
	}
	t := time.Now()
	rate, err := PipeCeiling(ctx, PipeConfig{ClientOpts: opts, From: r.liveStart, Records: r.res.Events,
		EventsPerRecord: r.res.EventsPerRecord, EventBytes: size, Topic: topic, TransactionalID: r.kc.TransactionalIDPrefix + "pipe"})
	if err != nil {
		return err
	}
	dd := &r.res.Details
	dd.Pipe, dd.PipeEventBytes = time.Since(t), size
	r.res.PipeCeilingEventsPerSec = rate
	r.log("pipe ceiling: %d records, %.2f events of %d bytes each per record: %.0f records/s", r.res.Events, r.res.EventsPerRecord, size, rate)
	return nil
}

// meanEventBytes is the mean value size of the first (up to 2,000)
// membership events serve published.
func (r *runner) meanEventBytes(ctx context.Context) (int, error) {
	cl, err := r.client(kgo.ConsumeTopics(r.kc.MembershipsTopic()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	n, bytes := 0, 0
	for n < 2000 {
		fs := cl.PollRecords(ctx, 2000-n)
		if ctx.Err() != nil {
			break
		}
		fs.EachRecord(func(rec *kgo.Record) { n, bytes = n+1, bytes+len(rec.Value) })
	}
	if n == 0 {
		return 150, nil // no event published: a typical event's size
	}
	return bytes / n, nil
}
