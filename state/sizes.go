package state

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/cockroachdb/pebble/v2"
)

// prefixSize is the key range of group size series: member counts of
// smart and static groups sampled over time, per input partition. They
// are not partition state (a partition moving away keeps its history
// here) and are never in the changelog.
//
//	'z' spot 0 group 0 i64(minute) u32(partition) -> uvarint members
const prefixSize = 'z'

// SizePoint is the member count of a group in one input partition at one
// instant (epoch milliseconds, a whole minute).
type SizePoint struct {
	Spot, Group string
	Partition   int32
	TS          int64
	Members     uint64
}

func sizeGroupPrefix(spot, group string) []byte {
	b := make([]byte, 0, 3+len(spot)+len(group)+12)
	b = append(b, prefixSize)
	b = append(b, spot...)
	b = append(b, 0)
	b = append(b, group...)
	return append(b, 0)
}

// SizeKey is the key of one size point.
func SizeKey(spot, group string, ts int64, part int32) []byte {
	return appendU32(appendI64(sizeGroupPrefix(spot, group), ts), uint32(part))
}

// WriteSizes stores size points without sync: a point lost in a crash is
// one minute of a chart.
func (s *Store) WriteSizes(points []SizePoint) error {
	if len(points) == 0 {
		return nil
	}
	b := s.NewWriteBatch()
	var v [binary.MaxVarintLen64]byte
	for _, p := range points {
		n := binary.PutUvarint(v[:], p.Members)
		if err := b.Set(SizeKey(p.Spot, p.Group, p.TS, p.Partition), v[:n]); err != nil {
			_ = b.Close()
			return err
		}
	}
	return b.CommitNoSync() // closes the batch
}

// ReadSizes calls fn with the size points of a group whose instant is in
// [from, to], in time order. The engine's read counter does not count it.
func (s *Store) ReadSizes(spot, group string, from, to int64, fn func(p SizePoint)) error {
	prefix := sizeGroupPrefix(spot, group)
	lower := appendI64(append([]byte(nil), prefix...), from)
	upper := appendI64(append([]byte(nil), prefix...), to+1)
	return scan(s.db, lower, upper, func(k, v []byte) bool {
		rest := k[len(prefix):]
		if len(rest) != 12 {
			return true
		}
		n, l := binary.Uvarint(v)
		if l <= 0 {
			return true
		}
		fn(SizePoint{Spot: spot, Group: group, TS: decodeI64(rest[:8]), Partition: int32(binary.BigEndian.Uint32(rest[8:])), Members: n})
		return true
	})
}

// DeleteSizesBefore deletes every size point older than cutoff, one
// range deletion per group that has points.
func (s *Store) DeleteSizesBefore(cutoff int64) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixSize}, UpperBound: []byte{prefixSize + 1}})
	if err != nil {
		return fmt.Errorf("state: sizes: %w", err)
	}
	var prefixes [][]byte
	for ok := it.First(); ok; {
		k := it.Key()
		if len(k) < 13 {
			ok = it.Next()
			continue
		}
		p := append([]byte(nil), k[:len(k)-12]...)
		prefixes = append(prefixes, p)
		ok = it.SeekGE(PrefixEnd(p))
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("state: sizes: %w", err)
	}
	if len(prefixes) == 0 {
		return nil
	}
	b := s.NewWriteBatch()
	for _, p := range prefixes {
		if err := b.DeleteRange(appendI64(append([]byte(nil), p...), math.MinInt64), appendI64(append([]byte(nil), p...), cutoff)); err != nil {
			_ = b.Close()
			return err
		}
	}
	return b.CommitNoSync() // closes the batch
}
