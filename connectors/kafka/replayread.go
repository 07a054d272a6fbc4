package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// PartitionRange is the part of a topic partition a bounded read covers:
// from Start (the log start) up to End, exclusive.
type PartitionRange struct {
	Topic      string
	Partition  int32
	Start, End int64
}

// Ranges returns, for every partition of topics, its log start and its end
// offset (high watermark) now: what a read of the topics "up to now"
// covers.
func Ranges(ctx context.Context, adm *kadm.Client, topics ...string) ([]PartitionRange, error) {
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("kafka: listing end offsets: %w", err)
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("kafka: listing start offsets: %w", err)
	}
	var out []PartitionRange
	for _, t := range topics {
		ps, ok := ends[t]
		if !ok {
			return nil, fmt.Errorf("kafka: topic %s does not exist", t)
		}
		for p := int32(0); p < int32(len(ps)); p++ {
			e, ok := ps[p]
			if !ok {
				return nil, fmt.Errorf("kafka: topic %s: no end offset for partition %d", t, p)
			}
			if e.Err != nil {
				return nil, fmt.Errorf("kafka: end offset of %s/%d: %w", t, p, e.Err)
			}
			s, ok := starts.Lookup(t, p)
			if !ok || s.Err != nil {
				return nil, fmt.Errorf("kafka: no start offset for %s/%d", t, p)
			}
			out = append(out, PartitionRange{Topic: t, Partition: p, Start: s.Offset, End: e.Offset})
		}
	}
	return out, nil
}

var errRangeDone = errors.New("kafka: range read")

// ReadRange reads r read_committed, without joining any consumer group,
// and calls fn with every committed data record whose offset is below
// r.End, in offset order. Transactions open below r.End are waited for.
// It returns fn's error, if any, or nil once r.End is reached.
func ReadRange(ctx context.Context, cl *kgo.Client, r PartitionRange, fn func(*kgo.Record) error) error {
	if r.Start >= r.End {
		return nil
	}
	_, err := readPartitionToEnd(ctx, cl, r.Topic, r.Partition, r.Start, func(rec *kgo.Record) error {
		if rec.Offset >= r.End {
			return errRangeDone
		}
		return fn(rec)
	})
	if errors.Is(err, errRangeDone) {
		return nil
	}
	return err
}
