package engine

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"

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

// forget drops the in-memory state and posting lists of a partition, and
// its changes not yet persisted.
func (e *Engine) forget(p int32) {
	delete(e.parts, p)
	delete(e.unpersisted, p)
	delete(e.overlay, p)
	prefix := string(state.PartitionPrefix(p))
	for k := range e.postings {
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
			delete(e.postings, k)
		}
	}
}

// RestorePartition applies changelog entries (oldest first) to a partition
// that is not owned, then loads the restored state into memory (posting
// lists and timers are derived from the members). Call it with the whole
// changelog of the partition after DropPartition, or with the changelog
// after the stored snapshot's tag (Snapshot), in chunks if needed, and
// finish with done=true. through tags the stored state with the last
// changelog record of entries, in the same store batch (NoSnapshotTag:
// leave the tag), so a restore interrupted by a crash resumes there.
func (e *Engine) RestorePartition(p int32, entries []ChangelogEntry, through SnapshotTag, done bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.owned[p] {
		return fmt.Errorf("engine: restore partition %d while it is assigned", p)
	}
	e.forget(p)
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
	if through.Offset >= 0 {
		if err := b.Set(state.SnapshotKey(p), state.EncodeSnapshotTag(through.Offset, through.Time.UnixMilli())); err != nil {
			_ = b.Close()
			return err
		}
	}
	commit := b.Commit
	if e.cfg.DeferPartitionWrites {
		commit = b.CommitNoSync // the changelog stays the truth
	}
	if err := commit(); err != nil {
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
	return e.loadPartition(p)
}
