package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// readPartitionToEnd reads one partition read_committed from offset from (a
// negative from means the log start) up to the partition's high watermark
// as of the call, and calls fn for every committed data record below it,
// in offset order. It returns the offset reading stopped at (the end).
//
// It issues Fetch requests itself instead of using a kgo consumer because
// kgo does not expose a consumer's position: with read_committed, aborted
// records and transaction markers are skipped and compaction leaves gaps,
// so "the last record I saw" cannot tell whether the end was reached. A raw
// fetch reports exactly how far it got (kgo.ProcessFetchPartition), and an
// empty answer below the last stable offset proves a gap.
//
// Transactions still open below the end are waited for (their outcome
// decides what the end holds), for up to the transaction timeout of their
// producer.
func readPartitionToEnd(ctx context.Context, cl *kgo.Client, topic string, partition int32, from int64, fn func(*kgo.Record) error) (int64, error) {
	return readPartition(ctx, cl, topic, partition, from, true, fn)
}

// readPartition is readPartitionToEnd with a choice of isolation: with
// committed false it reads read_uncommitted and also passes the
// transaction markers (control records) to fn.
func readPartition(ctx context.Context, cl *kgo.Client, topic string, partition int32, from int64, committed bool, fn func(*kgo.Record) error) (int64, error) {
	isolation, level := kgo.ReadCommitted(), int8(1)
	if !committed {
		isolation, level = kgo.ReadUncommitted(), 0
	}
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("kafka: listing end offsets of %s: %w", topic, err)
	}
	endOff, ok := ends.Lookup(topic, partition)
	if !ok {
		return 0, fmt.Errorf("kafka: topic %s partition %d does not exist", topic, partition)
	}
	if endOff.Err != nil {
		return 0, fmt.Errorf("kafka: end offset of %s/%d: %w", topic, partition, endOff.Err)
	}
	end := endOff.Offset

	off := from
	if off < 0 {
		starts, err := adm.ListStartOffsets(ctx, topic)
		if err != nil {
			return 0, fmt.Errorf("kafka: listing start offsets of %s: %w", topic, err)
		}
		so, _ := starts.Lookup(topic, partition)
		if so.Err != nil {
			return 0, fmt.Errorf("kafka: start offset of %s/%d: %w", topic, partition, so.Err)
		}
		off = so.Offset
	}
	if off >= end {
		return max(off, end), nil
	}

	leader, id, err := partitionLeader(ctx, adm, topic, partition)
	if err != nil {
		return 0, err
	}
	dec := kgo.DefaultDecompressor()
	backoff := func(attempt int) time.Duration {
		return min(time.Duration(attempt+1)*50*time.Millisecond, time.Second)
	}
	waits := 0
	// relocate waits, longer each time, then finds the partition's leader
	// again: the broker may be gone or no longer lead it.
	relocate := func() error {
		if err := sleepCtx(ctx, backoff(waits)); err != nil {
			return err
		}
		waits++
		var err error
		leader, id, err = partitionLeader(ctx, adm, topic, partition)
		return err
	}
	for off < end {
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis = 250
		req.MinBytes = 1
		req.MaxBytes = 16 << 20
		req.IsolationLevel = level
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		rt.TopicID = id
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = partition
		rp.FetchOffset = off
		rp.PartitionMaxBytes = 8 << 20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)

		kresp, err := cl.Broker(int(leader)).RetriableRequest(ctx, req)
		if err != nil {
			if ctx.Err() != nil {
				return off, ctx.Err()
			}
			if err := relocate(); err != nil {
				return off, err
			}
			continue
		}
		resp := kresp.(*kmsg.FetchResponse)
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return off, fmt.Errorf("kafka: fetching %s/%d: %w", topic, partition, err)
		}
		var part *kmsg.FetchResponseTopicPartition
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				if resp.Topics[i].Partitions[j].Partition == partition {
					part = &resp.Topics[i].Partitions[j]
				}
			}
		}
		if part == nil {
			return off, fmt.Errorf("kafka: fetch response for %s is missing partition %d", topic, partition)
		}
		if perr := kerr.ErrorForCode(part.ErrorCode); perr != nil {
			switch {
			case errors.Is(perr, kerr.OffsetOutOfRange) && off < part.LogStartOffset:
				// Retention or compaction moved the start past us.
				off = part.LogStartOffset
				continue
			case kerr.IsRetriable(perr):
				if err := relocate(); err != nil {
					return off, err
				}
				continue
			default:
				return off, fmt.Errorf("kafka: fetching %s/%d at %d: %w", topic, partition, off, perr)
			}
		}

		fp, next := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{
			KeepControlRecords: !committed,
			Offset:             off,
			IsolationLevel:     isolation,
			Topic:              topic,
			Partition:          partition,
		}, part, dec, nil)
		if fp.Err != nil {
			return off, fmt.Errorf("kafka: decoding %s/%d at %d: %w", topic, partition, off, fp.Err)
		}
		for _, r := range fp.Records {
			if r.Offset >= end {
				break
			}
			if err := fn(r); err != nil {
				return off, err
			}
		}
		if next > off {
			off = next
			waits = 0
			continue
		}
		// Nothing readable at off. Below the last stable offset that
		// means a gap (compaction), unless the broker throttled us; at it,
		// a transaction is still open.
		lso := part.LastStableOffset
		if lso < 0 || !committed {
			lso = part.HighWatermark
		}
		if off < lso && resp.ThrottleMillis == 0 {
			off = lso
			continue
		}
		if err := sleepCtx(ctx, backoff(waits)); err != nil {
			return off, fmt.Errorf("kafka: waiting for the open transaction at %s/%d offset %d: %w", topic, partition, off, err)
		}
		waits++
	}
	return end, nil
}

func partitionLeader(ctx context.Context, adm *kadm.Client, topic string, partition int32) (int32, [16]byte, error) {
	md, err := adm.Metadata(fresh(ctx), topic)
	if err != nil {
		return 0, [16]byte{}, fmt.Errorf("kafka: metadata of %s: %w", topic, err)
	}
	td, ok := md.Topics[topic]
	if !ok || td.Err != nil {
		if ok {
			err = td.Err
		} else {
			err = kerr.UnknownTopicOrPartition
		}
		return 0, [16]byte{}, fmt.Errorf("kafka: metadata of %s: %w", topic, err)
	}
	pd, ok := td.Partitions[partition]
	if !ok {
		return 0, [16]byte{}, fmt.Errorf("kafka: topic %s has no partition %d", topic, partition)
	}
	if pd.Leader < 0 {
		return 0, [16]byte{}, fmt.Errorf("kafka: %s/%d has no leader: %w", topic, partition, kerr.LeaderNotAvailable)
	}
	return pd.Leader, td.ID, nil
}
