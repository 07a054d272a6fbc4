package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/cockroachdb/pebble/v2"
)

// Sub-key bytes of the membership history and the membership start keys.
const (
	SubHistory byte = subHistory
	SubSince   byte = subSince
)

const (
	subHistory = 'h'
	subSince   = 'j'
)

// HistoryKey is the key of a member's membership transitions of one batch,
// numbered by the first of them: n numbers the member's transitions (every
// group together) from 1, so the keys of a member are in the order of its
// transitions.
func HistoryKey(part int32, spot string, ord uint32, n uint64) []byte {
	return appendU64(appendU32(spotKey(part, subHistory, spot, 12), ord), n)
}

// HistoryPrefix is the prefix of a member's history keys.
func HistoryPrefix(part int32, spot string, ord uint32) []byte {
	return appendU32(spotKey(part, subHistory, spot, 4), ord)
}

// HistoryN decodes the transition number of a history key.
func HistoryN(key []byte) uint64 { return binary.BigEndian.Uint64(key[len(key)-8:]) }

// SinceKey holds when a member joined a smart group it is in (i64 Unix
// ms), in stores of the first history layout (the member state holds it
// now).
func SinceKey(part int32, spot string, ord uint32, group string) []byte {
	return append(appendU32(spotKey(part, subSince, spot, 4+len(group)), ord), group...)
}

// SincePrefix is the prefix of a member's since keys.
func SincePrefix(part int32, spot string, ord uint32) []byte {
	return appendU32(spotKey(part, subSince, spot, 4), ord)
}

// ErrInUse is returned by OpenSnapshot for a store another process (or
// this one) has open.
var ErrInUse = errors.New("state: the store is in use")

// Snapshot is a read-only, consistent view of a store that no engine has
// open: every read sees the store as it was when OpenSnapshot returned.
type Snapshot struct {
	db   *pebble.DB
	snap *pebble.Snapshot
}

var _ Reader = (*Snapshot)(nil)

// OpenSnapshot opens the store in dir read-only, without creating it, and
// takes a snapshot of it. Pebble locks the directory of an open store, so
// a store in use fails with an error wrapping ErrInUse.
func OpenSnapshot(dir string) (*Snapshot, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	db, err := pebble.Open(dir, &pebble.Options{ReadOnly: true, ErrorIfNotExists: true, Merger: postingMergeOperator,
		Logger: quietLogger{}})
	if err != nil {
		if inUse(err) {
			return nil, fmt.Errorf("%w: %s: %w", ErrInUse, dir, err)
		}
		return nil, fmt.Errorf("state: open %s read-only: %w", dir, err)
	}
	return &Snapshot{db: db, snap: db.NewSnapshot()}, nil
}

// inUse reports whether an open error is Pebble's directory lock being
// held: by another process (fcntl answers EAGAIN or EACCES) or this one.
func inUse(err error) bool {
	return errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) ||
		strings.Contains(err.Error(), "lock held by current process")
}

// Get implements Reader.
func (s *Snapshot) Get(key []byte) ([]byte, bool, error) { return get(s.snap, key) }

// Scan implements Reader.
func (s *Snapshot) Scan(lower, upper []byte, fn func(k, v []byte) bool) error {
	return scan(s.snap, lower, upper, fn)
}

// DiskBytes is the size of the database on disk.
func (s *Snapshot) DiskBytes() uint64 { return s.db.Metrics().DiskSpaceUsage() }

// Close releases the snapshot and the store.
func (s *Snapshot) Close() error {
	err := s.snap.Close()
	if cerr := s.db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("state: close snapshot: %w", err)
	}
	return nil
}

// Partitions returns the partitions of which r holds any key, in order.
func Partitions(r Reader) ([]int32, error) {
	var out []int32
	lo := []byte{prefixPartition}
	hi := []byte{prefixPartition + 1}
	for {
		var found []byte
		err := r.Scan(lo, hi, func(k, _ []byte) bool { found = append([]byte(nil), k...); return false })
		if err != nil {
			return nil, err
		}
		p, _, ok := PartitionOfKey(found)
		if !ok {
			return out, nil
		}
		out = append(out, p)
		if uint32(p) == ^uint32(0) {
			return out, nil
		}
		lo = PartitionPrefix(p + 1)
	}
}

// MemberPartPrefix is the prefix of all member states of a partition.
func MemberPartPrefix(part int32) []byte { return partKey(part, subMember, 0) }

// PositionPrefix is the prefix of a partition's input positions.
func PositionPrefix(part int32) []byte { return partKey(part, subPosition, 0) }
