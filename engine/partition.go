package engine

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/smartgroups/smartgroups/state"
)

const metaInstance = "instance"

// InstanceID returns the store's random identity, created on first use. A
// runtime tags what it publishes with it to tell its own output from that
// of another instance that owned a partition meanwhile.
func (e *Engine) InstanceID() (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v, ok, err := e.st.Get(state.MetaKey(metaInstance))
	if err != nil {
		return "", err
	}
	if ok {
		return string(v), nil
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("engine: instance id: %w", err)
	}
	id := hex.EncodeToString(b[:])
	batch := e.st.NewBatch()
	if err := batch.Set(state.MetaKey(metaInstance), []byte(id)); err != nil {
		_ = batch.Close()
		return "", err
	}
	return id, batch.Commit()
}

// HasPartitionState reports whether the store holds any state of a
// partition.
func (e *Engine) HasPartitionState(p int32) (bool, error) {
	found := false
	pp := state.PartitionPrefix(p)
	err := e.st.Scan(pp, state.PrefixEnd(pp), func(k, v []byte) bool { found = true; return false })
	return found, err
}

// DropPartition deletes all local state of a partition that is not owned
// (before restoring it from a changelog, when another instance changed it
// meanwhile).
func (e *Engine) DropPartition(p int32) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.owned[p] {
		return fmt.Errorf("engine: drop partition %d while it is assigned", p)
	}
	e.forget(p)
	b := e.st.NewBatch()
	pp := state.PartitionPrefix(p)
	if err := b.DeleteRange(pp, state.PrefixEnd(pp)); err != nil {
		_ = b.Close()
		return err
	}
	return b.Commit()
}

// forget drops cached posting lists and members of a partition.
func (e *Engine) forget(p int32) {
	e.cache.clear()
	delete(e.nextDue, p)
	delete(e.timerFloor, p)
	prefix := string(state.PartitionPrefix(p))
	for k := range e.postings {
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
			delete(e.postings, k)
		}
	}
}

// RestorePartition applies changelog entries (oldest first) to a partition
// that is not owned, then rebuilds its posting lists from the restored
// members. Call it with the whole changelog of the partition after
// DropPartition, in chunks if needed, and finish with done=true.
func (e *Engine) RestorePartition(p int32, entries []ChangelogEntry, done bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.owned[p] {
		return fmt.Errorf("engine: restore partition %d while it is assigned", p)
	}
	b := e.st.NewBatch()
	for _, en := range entries {
		part, _, ok := state.PartitionOfKey(en.Key)
		if !ok || part != p {
			_ = b.Close()
			return fmt.Errorf("engine: changelog entry of partition %d has key %q outside it", p, en.Key)
		}
		var err error
		if en.Delete {
			err = b.Delete(en.Key)
		} else {
			err = b.Set(en.Key, en.Value)
		}
		if err != nil {
			_ = b.Close()
			return err
		}
	}
	if err := b.Commit(); err != nil {
		return err
	}
	if !done {
		return nil
	}
	if e.cfg.Clock == ClockEvent {
		v, ok, err := e.st.Get(state.PartitionClockKey(p))
		if err != nil {
			return err
		}
		if ok && state.DecodeI64(v) > e.now {
			e.now = state.DecodeI64(v)
			b := e.st.NewBatch()
			if err := b.Set(state.MetaKey(metaNow), state.EncodeI64(e.now)); err != nil {
				_ = b.Close()
				return err
			}
			if err := b.Commit(); err != nil {
				return err
			}
		}
	}
	return e.rebuildPostings(p)
}

// rebuildPostings recomputes every posting list of a partition from its
// member states and activities.
func (e *Engine) rebuildPostings(p int32) error {
	lists := map[string]*roaring.Bitmap{}
	add := func(spot, term string, ord uint32) {
		k := string(state.PostingKey(p, spot, term))
		bm := lists[k]
		if bm == nil {
			bm = roaring.New()
			lists[k] = bm
		}
		bm.Add(ord)
	}
	pp := state.PartitionPrefix(p)
	mp := append(append([]byte(nil), pp...), 'm')
	var decErr error
	err := e.st.Scan(mp, state.PrefixEnd(mp), func(k, v []byte) bool {
		rest := k[len(mp):]
		i := bytes.IndexByte(rest, 0)
		if i < 0 || len(rest) != i+5 {
			decErr = fmt.Errorf("engine: malformed member key %q", k)
			return false
		}
		spot := string(rest[:i])
		ord := state.DecodeU32(rest[i+1:])
		st, err := DecodeMemberState(v)
		if err != nil {
			decErr = err
			return false
		}
		m := &member{st: st}
		add(spot, termAll, ord)
		for _, term := range m.terms() {
			add(spot, term, ord)
		}
		for _, g := range st.Groups {
			add(spot, termSmartGroup(g), ord)
		}
		return true
	})
	if err == nil {
		err = decErr
	}
	if err != nil {
		return err
	}
	ap := append(append([]byte(nil), pp...), 'a')
	err = e.st.Scan(ap, state.PrefixEnd(ap), func(k, v []byte) bool {
		rest := k[len(ap):]
		i := bytes.IndexByte(rest, 0)
		if i < 0 || len(rest) < i+5 {
			decErr = fmt.Errorf("engine: malformed activity key %q", k)
			return false
		}
		spot := string(rest[:i])
		ord := state.DecodeU32(rest[i+1 : i+5])
		typRest := rest[i+5:]
		j := bytes.IndexByte(typRest, 0)
		if j < 0 {
			decErr = fmt.Errorf("engine: malformed activity key %q", k)
			return false
		}
		typ := string(typRest[:j])
		add(spot, termActivity(typ), ord)
		if len(v) > 0 {
			add(spot, termActivityResource(typ, string(v)), ord)
		}
		return true
	})
	if err == nil {
		err = decErr
	}
	if err != nil {
		return err
	}
	b := e.st.NewBatch()
	lp := append(append([]byte(nil), pp...), 'l')
	if err := b.DeleteRange(lp, state.PrefixEnd(lp)); err != nil {
		_ = b.Close()
		return err
	}
	for k, bm := range lists {
		v, err := state.EncodePostingFull(bm)
		if err == nil {
			err = b.Set([]byte(k), v)
		}
		if err != nil {
			_ = b.Close()
			return err
		}
	}
	e.forget(p)
	return b.Commit()
}
