package bench

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

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
