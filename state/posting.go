package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/cockroachdb/pebble/v2"
)

// Posting lists are roaring bitmaps of member ordinals. A batch does not
// rewrite a whole list: it merges a delta (ordinals added, ordinals
// removed) into the key with Pebble's merge operator, and Pebble folds
// deltas into the full bitmap during reads and compactions. Values are:
//
//	'F' bitmap                           the full list
//	'D' u32(len(adds)) adds removes      a delta, both roaring bitmaps

const (
	postingFull  = 'F'
	postingDelta = 'D'
)

// MergerName identifies the posting-list merge operator in the store.
const MergerName = "smartgroups.posting.v1"

var errBadPosting = errors.New("state: malformed posting list value")

// EncodePostingDelta encodes a delta merge operand.
func EncodePostingDelta(adds, removes *roaring.Bitmap) ([]byte, error) {
	a, err := adds.ToBytes()
	if err != nil {
		return nil, err
	}
	r, err := removes.ToBytes()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 5+len(a)+len(r))
	out = append(out, postingDelta)
	out = binary.BigEndian.AppendUint32(out, uint32(len(a)))
	out = append(out, a...)
	return append(out, r...), nil
}

// DecodePosting decodes a stored posting list (a full value, or a delta
// read as a list when nothing older exists).
func DecodePosting(v []byte) (*roaring.Bitmap, error) {
	p, err := parsePosting(v)
	if err != nil {
		return nil, err
	}
	return p.adds, nil // a delta with nothing older: its adds are the list
}

type posting struct {
	full          bool
	adds, removes *roaring.Bitmap // full: adds is the list
}

func parsePosting(v []byte) (*posting, error) {
	if len(v) == 0 {
		return nil, errBadPosting
	}
	switch v[0] {
	case postingFull:
		bm := roaring.New()
		if _, err := bm.FromUnsafeBytes(append([]byte(nil), v[1:]...)); err != nil {
			return nil, fmt.Errorf("%w: %w", errBadPosting, err)
		}
		return &posting{full: true, adds: bm, removes: roaring.New()}, nil
	case postingDelta:
		if len(v) < 5 {
			return nil, errBadPosting
		}
		n := int(binary.BigEndian.Uint32(v[1:5]))
		if 5+n > len(v) {
			return nil, errBadPosting
		}
		a, r := roaring.New(), roaring.New()
		if _, err := a.FromUnsafeBytes(append([]byte(nil), v[5:5+n]...)); err != nil {
			return nil, fmt.Errorf("%w: %w", errBadPosting, err)
		}
		if _, err := r.FromUnsafeBytes(append([]byte(nil), v[5+n:]...)); err != nil {
			return nil, fmt.Errorf("%w: %w", errBadPosting, err)
		}
		return &posting{adds: a, removes: r}, nil
	}
	return nil, errBadPosting
}

// then applies newer on top of p.
func (p *posting) then(newer *posting) {
	if newer.full {
		*p = *newer
		return
	}
	p.adds.AndNot(newer.removes)
	p.adds.Or(newer.adds)
	if !p.full {
		p.removes.AndNot(newer.adds)
		p.removes.Or(newer.removes)
	}
}

type postingMerger struct{ acc *posting }

func (m *postingMerger) MergeNewer(v []byte) error {
	p, err := parsePosting(v)
	if err != nil {
		return err
	}
	m.acc.then(p)
	return nil
}

func (m *postingMerger) MergeOlder(v []byte) error {
	p, err := parsePosting(v)
	if err != nil {
		return err
	}
	p.then(m.acc)
	m.acc = p
	return nil
}

func (m *postingMerger) Finish(includesBase bool) ([]byte, io.Closer, error) {
	if m.acc.full || includesBase {
		m.acc.adds.RunOptimize()
		b, err := m.acc.adds.ToBytes()
		if err != nil {
			return nil, nil, err
		}
		return append([]byte{postingFull}, b...), nil, nil
	}
	b, err := EncodePostingDelta(m.acc.adds, m.acc.removes)
	return b, nil, err
}

var postingMergeOperator = &pebble.Merger{
	Name: MergerName,
	Merge: func(key, value []byte) (pebble.ValueMerger, error) {
		p, err := parsePosting(value)
		if err != nil {
			return nil, err
		}
		return &postingMerger{acc: p}, nil
	},
}

// EncodePostingFull encodes a whole posting list.
func EncodePostingFull(bm *roaring.Bitmap) ([]byte, error) {
	bm.RunOptimize()
	b, err := bm.ToBytes()
	if err != nil {
		return nil, err
	}
	return append([]byte{postingFull}, b...), nil
}
