package replay

import (
	"container/heap"
	"context"
	"io"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/smartgroups/smartgroups/connectors/kafka"
	"github.com/smartgroups/smartgroups/engine"
)

// chunkSize is how many records a partition reader hands the merge at a
// time; each reader buffers up to chunksAhead chunks.
const (
	chunkSize   = 1024
	chunksAhead = 4
)

// partReader reads one partition range in the background and hands its
// records over in chunks.
type partReader struct {
	rng  kafka.PartitionRange
	kind engine.Kind
	rank int // kind order for records with the same timestamp
	ch   chan []*kgo.Record
	err  error // set before ch is closed
	cur  []*kgo.Record
	i    int
	// reached is the offset after the last record merged (for progress).
	reached atomic.Int64
	// skipped counts the engine's erasure tombstones left out of the
	// merge (definitions partitions only).
	skipped atomic.Int64
}

func (p *partReader) run(ctx context.Context, cl *kgo.Client) {
	defer close(p.ch)
	buf := make([]*kgo.Record, 0, chunkSize)
	err := kafka.ReadRange(ctx, cl, p.rng, func(r *kgo.Record) error {
		// The engine's erasure tombstones carry the instant serve wrote
		// them, not one in the input's order: left in, one would hold the
		// whole partition back in the merge (a head stamped after every
		// record still to come), so the definitions behind it would be
		// applied after member records they precede. The replay applies
		// the erasures itself.
		if p.kind == engine.KindDefinitions && erasureTombstone(r) {
			p.skipped.Add(1)
			return nil
		}
		buf = append(buf, r)
		if len(buf) == chunkSize {
			select {
			case p.ch <- buf:
			case <-ctx.Done():
				return ctx.Err()
			}
			buf = make([]*kgo.Record, 0, chunkSize)
		}
		return nil
	})
	if err == nil && len(buf) > 0 {
		select {
		case p.ch <- buf:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	p.err = err
}

// head returns the next record of the partition, waiting for its reader;
// nil once the partition is exhausted.
func (p *partReader) head() (*kgo.Record, error) {
	for p.i >= len(p.cur) {
		chunk, ok := <-p.ch
		if !ok {
			p.reached.Store(p.rng.End)
			return nil, p.err
		}
		p.cur, p.i = chunk, 0
	}
	return p.cur[p.i], nil
}

// before orders the heads of two partitions: record timestamp, then
// definitions before member records, then topic, partition and offset.
func before(a, b *partReader) bool {
	ra, rb := a.cur[a.i], b.cur[b.i]
	if !ra.Timestamp.Equal(rb.Timestamp) {
		return ra.Timestamp.Before(rb.Timestamp)
	}
	if a.rank != b.rank {
		return a.rank < b.rank
	}
	if ra.Topic != rb.Topic {
		return ra.Topic < rb.Topic
	}
	if ra.Partition != rb.Partition {
		return ra.Partition < rb.Partition
	}
	return ra.Offset < rb.Offset
}

type readerHeap []*partReader

func (h readerHeap) Len() int           { return len(h) }
func (h readerHeap) Less(i, j int) bool { return before(h[i], h[j]) }
func (h readerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *readerHeap) Push(x any)        { *h = append(*h, x.(*partReader)) }
func (h *readerHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// merger merges the partitions of the input topics by record timestamp:
// within a partition records keep their offset order; across partitions
// and topics the record with the earliest timestamp comes first.
type merger struct {
	readers []*partReader
	h       readerHeap
	started bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	total   int64
}

func newMerger(ranges []kafka.PartitionRange, kinds map[string]engine.Kind) *merger {
	m := &merger{}
	for _, r := range ranges {
		k := kinds[r.Topic]
		rank := 1
		if k == engine.KindDefinitions {
			rank = 0
		}
		p := &partReader{rng: r, kind: k, rank: rank, ch: make(chan []*kgo.Record, chunksAhead)}
		p.reached.Store(r.Start)
		m.readers = append(m.readers, p)
		if r.End > r.Start {
			m.total += r.End - r.Start
		}
	}
	return m
}

// start starts a reader per partition.
func (m *merger) start(ctx context.Context, cl *kgo.Client) {
	ctx, m.cancel = context.WithCancel(ctx)
	for _, p := range m.readers {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			p.run(ctx, cl)
		}()
	}
}

// stop stops the readers and waits for them.
func (m *merger) stop() {
	if m.cancel != nil {
		m.cancel()
	}
	// Drain so that a reader blocked on a full channel sees ctx.Done.
	for _, p := range m.readers {
		go func() {
			for range p.ch {
				// drained
			}
		}()
	}
	m.wg.Wait()
}

// done returns how many offsets of the ranges were merged so far, and the
// total.
func (m *merger) done() (int64, int64) {
	var n int64
	for _, p := range m.readers {
		n += p.reached.Load() - p.rng.Start
	}
	return n, m.total
}

// next returns the next record in merge order and its reader; nil at the
// end.
func (m *merger) next() (*kgo.Record, *partReader, error) {
	if !m.started {
		m.started = true
		for _, p := range m.readers {
			r, err := p.head()
			if err != nil {
				return nil, nil, err
			}
			if r != nil {
				m.h = append(m.h, p)
			}
		}
		heap.Init(&m.h)
	}
	if len(m.h) == 0 {
		return nil, nil, io.EOF
	}
	p := m.h[0]
	r := p.cur[p.i]
	p.i++
	p.reached.Store(r.Offset + 1)
	nr, err := p.head()
	if err != nil {
		return nil, nil, err
	}
	if nr == nil {
		heap.Pop(&m.h)
	} else {
		heap.Fix(&m.h, 0)
	}
	return r, p, nil
}
