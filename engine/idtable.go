package engine

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math"
)

// hashSeed seeds the in-memory hashes of member and activity ids. They are
// never persisted (the tables are rebuilt when a partition is loaded), so
// a seed made once per process is enough.
var hashSeed = maphash.MakeSeed()

// hashID is the 64-bit hash of an id within this process.
func hashID(id string) uint64 { return maphash.String(hashSeed, id) }

// idTable maps the member ids of one spot of a partition to their
// ordinals without pointers for the garbage collector to follow: an
// open-addressing table (linear probing, backward-shift deletion) of
// (32-bit hash, ordinal+1) slots over an arena of length-prefixed ids.
type idTable struct {
	slots []uint64 // hash<<32 | ordinal+1; 0 is free
	n     int
	arena []byte
	at    []uint32 // by ordinal: offset of the id in arena
}

func idHash32(id string) uint32 { return uint32(hashID(id) >> 32) }

// id returns the id stored for an ordinal (a view of the arena).
func (t *idTable) id(ord uint32) []byte {
	off := t.at[ord]
	l, n := binary.Uvarint(t.arena[off:])
	start := int(off) + n
	return t.arena[start : start+int(l)]
}

// get returns the ordinal of id.
func (t *idTable) get(id string) (uint32, bool) {
	if t.n == 0 {
		return 0, false
	}
	h := idHash32(id)
	mask := uint32(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			return 0, false
		}
		if uint32(s>>32) == h {
			ord := uint32(s) - 1
			if string(t.id(ord)) == id {
				return ord, true
			}
		}
	}
}

// put adds id with ordinal ord (id must not be present).
func (t *idTable) put(id string, ord uint32) error {
	if ord == math.MaxUint32 {
		return fmt.Errorf("engine: member ordinal %d out of range", ord)
	}
	if len(t.arena)+len(id)+binary.MaxVarintLen64 > math.MaxUint32 {
		return fmt.Errorf("engine: member id arena full (%d bytes)", len(t.arena))
	}
	if (t.n+1)*4 > len(t.slots)*3 {
		t.grow()
	}
	for uint32(len(t.at)) <= ord {
		t.at = append(t.at, 0)
	}
	t.at[ord] = uint32(len(t.arena))
	t.arena = binary.AppendUvarint(t.arena, uint64(len(id)))
	t.arena = append(t.arena, id...)
	t.insert(uint64(idHash32(id))<<32 | uint64(ord+1))
	t.n++
	return nil
}

func (t *idTable) insert(s uint64) {
	mask := uint32(len(t.slots) - 1)
	i := uint32(s>>32) & mask
	for t.slots[i] != 0 {
		i = (i + 1) & mask
	}
	t.slots[i] = s
}

func (t *idTable) grow() {
	old := t.slots
	size := 16
	if len(old) > 0 {
		size = 2 * len(old)
	}
	t.slots = make([]uint64, size)
	for _, s := range old {
		if s != 0 {
			t.insert(s)
		}
	}
}

// del removes id. Its bytes stay in the arena (erasing a member is rare).
func (t *idTable) del(id string) {
	if t.n == 0 {
		return
	}
	h := idHash32(id)
	mask := uint32(len(t.slots) - 1)
	i := h & mask
	for {
		s := t.slots[i]
		if s == 0 {
			return
		}
		if uint32(s>>32) == h && string(t.id(uint32(s)-1)) == id {
			break
		}
		i = (i + 1) & mask
	}
	// Backward-shift deletion: move later entries of the probe run into
	// the hole unless their home slot lies cyclically in (i, j].
	for j := (i + 1) & mask; t.slots[j] != 0; j = (j + 1) & mask {
		home := uint32(t.slots[j]>>32) & mask
		if (i < j && i < home && home <= j) || (i > j && (home > i || home <= j)) {
			continue
		}
		t.slots[i] = t.slots[j]
		i = j
	}
	t.slots[i] = 0
	t.n--
}
