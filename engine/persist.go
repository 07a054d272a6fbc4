package engine

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/smartgroups/smartgroups/state"
)

// This file holds the deferred persistence of partition state
// (Config.DeferPartitionWrites): a batch's partition-scoped writes are
// kept in memory with its changelog until the runtime committed the
// batch's output, then written to the store without sync with a snapshot
// tag (Persist).

// SnapshotTag says which changelog record a partition's stored state
// reflects: replaying the changelog after Offset brings it up to date.
type SnapshotTag struct {
	// Offset is the changelog offset of the last record the state
	// reflects; negative when unknown.
	Offset int64
	// Time is the timestamp of that record: every later changelog record
	// was written after it.
	Time time.Time
}

// NoSnapshotTag leaves a partition's snapshot tag as it is.
var NoSnapshotTag = SnapshotTag{Offset: -1}

// unpersisted is one batch's changelog of one partition, applied to memory
// and awaiting Persist.
type unpersisted struct {
	id      uint64
	entries []ChangelogEntry
}

// overlayWrite is an activity-id key written by a batch not yet persisted:
// the only partition-scoped keys a transaction reads from the store.
type overlayWrite struct {
	id  uint64
	del bool
}

// deferred reports whether a key's write is kept in memory until Persist:
// a member partition's key under DeferPartitionWrites.
func (t *txn) deferred(key []byte) (int32, bool) {
	if !t.e.cfg.DeferPartitionWrites {
		return 0, false
	}
	p, _, ok := state.PartitionOfKey(key)
	return p, ok && p != DefPartition
}

// get reads a key as the transaction sees it: its own writes, then (for a
// deferred key) the batches not yet persisted, then the store.
func (t *txn) get(key []byte) ([]byte, bool, error) {
	p, ok := t.deferred(key)
	if !ok {
		return t.b.Get(key)
	}
	if _, sub, _ := state.PartitionOfKey(key); sub != state.SubActivityID {
		return nil, false, fmt.Errorf("engine: read of key %q, which deferred writes do not track", key)
	}
	if c := t.changelog[p]; c != nil {
		if i, ok := c.index[string(key)]; ok {
			en := c.entries[i]
			return en.Value, !en.Delete, nil
		}
	}
	if w, ok := t.e.overlay[p][string(key)]; ok {
		return nil, !w.del, nil
	}
	return t.e.st.Get(key)
}

// deferredKeys returns, sorted, the keys in [lo, hi) of partition p as the
// transaction sees them (store, batches not yet persisted, its own
// writes). Only activity-id ranges are tracked.
func (t *txn) deferredKeys(p int32, lo, hi []byte) ([][]byte, error) {
	if _, sub, _ := state.PartitionOfKey(lo); sub != state.SubActivityID {
		return nil, fmt.Errorf("engine: range read at %q, which deferred writes do not track", lo)
	}
	live := map[string]bool{}
	if err := t.e.st.Scan(lo, hi, func(k, _ []byte) bool { live[string(k)] = true; return true }); err != nil {
		return nil, err
	}
	in := func(k []byte) bool { return bytes.Compare(k, lo) >= 0 && bytes.Compare(k, hi) < 0 }
	for k, w := range t.e.overlay[p] {
		if in([]byte(k)) {
			live[k] = !w.del
		}
	}
	if c := t.changelog[p]; c != nil {
		for _, en := range c.entries {
			if in(en.Key) {
				live[string(en.Key)] = !en.Delete
			}
		}
	}
	var out [][]byte
	for k, ok := range live {
		if ok {
			out = append(out, []byte(k))
		}
	}
	slices.SortFunc(out, bytes.Compare)
	return out, nil
}

// queueUnpersisted keeps a committed batch's changelog of partition p
// until Persist, and its activity-id writes for reads.
func (e *Engine) queueUnpersisted(p int32, id uint64, entries []ChangelogEntry) {
	e.unpersisted[p] = append(e.unpersisted[p], unpersisted{id: id, entries: entries})
	for _, en := range entries {
		if _, sub, _ := state.PartitionOfKey(en.Key); sub == state.SubActivityID {
			ov := e.overlay[p]
			if ov == nil {
				ov = map[string]overlayWrite{}
				e.overlay[p] = ov
			}
			ov[string(en.Key)] = overlayWrite{id: id, del: en.Delete}
		}
	}
}

// Persist writes to the store the state changes of partition p's batches
// through batch id (Result.Outbox ids), once the runtime committed their
// output, with the snapshot tag through (NoSnapshotTag: keep the stored
// tag; the changes are committed, so a replay from the older tag is still
// exact). It does not sync: a crash can lose it, and later Persist calls,
// but the store then holds an older snapshot with its own tag. Call it in
// id order, from any goroutine; only under DeferPartitionWrites.
func (e *Engine) Persist(p int32, id uint64, through SnapshotTag) error {
	e.mu.Lock()
	if e.broken != nil {
		e.mu.Unlock()
		return e.broken
	}
	q := e.unpersisted[p]
	n := 0
	for n < len(q) && q[n].id <= id {
		n++
	}
	if n == 0 || q[n-1].id != id {
		e.mu.Unlock()
		return fmt.Errorf("engine: persist partition %d batch %d: no such batch is waiting", p, id)
	}
	todo := slices.Clone(q[:n])
	e.mu.Unlock()

	// Written without the lock: the batches stay in the queue (and their
	// activity ids in the overlay) until the store has them, so a
	// transaction running meanwhile reads them from either place.
	b := e.st.NewWriteBatch()
	err := func() error {
		for _, u := range todo {
			for _, en := range u.entries {
				var err error
				if en.Delete {
					err = b.Delete(en.Key)
				} else {
					err = b.Set(en.Key, en.Value)
				}
				if err != nil {
					return err
				}
			}
		}
		if through.Offset >= 0 {
			if err := b.Set(state.SnapshotKey(p), state.EncodeSnapshotTag(through.Offset, through.Time.UnixMilli())); err != nil {
				return err
			}
		}
		return b.CommitNoSync()
	}()

	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		_ = b.Close()
		e.broken = fmt.Errorf("engine: unusable after a failed persist: %w", err)
		return fmt.Errorf("engine: persist partition %d batch %d: %w", p, id, err)
	}
	q = e.unpersisted[p]
	if len(q) < n || q[n-1].id != id {
		return fmt.Errorf("engine: persist partition %d batch %d: the partition was dropped meanwhile", p, id)
	}
	clear(q[:n])
	e.unpersisted[p] = q[n:]
	for k, w := range e.overlay[p] {
		if w.id <= id {
			delete(e.overlay[p], k)
		}
	}
	return nil
}

// Snapshot returns the snapshot tag of a partition's stored state; ok is
// false when the store has none (then the state, if any, is not known to
// be a prefix of the changelog and must be dropped before a restore).
func (e *Engine) Snapshot(p int32) (SnapshotTag, bool, error) {
	v, ok, err := e.st.Get(state.SnapshotKey(p))
	if err != nil || !ok {
		return NoSnapshotTag, false, err
	}
	off, ms, valid := state.DecodeSnapshotTag(v)
	if !valid {
		return NoSnapshotTag, false, fmt.Errorf("engine: partition %d: malformed snapshot tag", p)
	}
	return SnapshotTag{Offset: off, Time: time.UnixMilli(ms)}, true, nil
}

// Unpersisted returns the number of partition p's batches applied to
// memory and not yet persisted.
func (e *Engine) Unpersisted(p int32) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.unpersisted[p])
}
