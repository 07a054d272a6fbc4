package state

import (
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// ErrClosed is returned by operations on a closed store.
var ErrClosed = errors.New("state: closed")

// ErrFailed is returned by Commit when Pebble cannot go on: a write to its
// log failed (the disk is full, an I/O error). The commit is not durable,
// and the store takes no more writes: stop, fix the cause, reopen it.
// Errors carrying it wrap the cause too (errors.Is(err, syscall.ENOSPC)).
var ErrFailed = errors.New("state: the store failed and must be reopened")

// Reader reads keys. Both the Store and a Batch (which sees its own
// uncommitted writes) are Readers.
type Reader interface {
	// Get returns a copy of the value of key; ok is false when absent.
	Get(key []byte) (value []byte, ok bool, err error)
	// Scan calls fn for every key in [lower, upper) in order until fn
	// returns false. key and value are only valid during the call.
	Scan(lower, upper []byte, fn func(key, value []byte) bool) error
}

// Writer writes keys.
type Writer interface {
	Set(key, value []byte) error
	Delete(key []byte) error
	DeleteRange(start, end []byte) error
}

// Options configure the store.
type Options struct {
	// CacheBytes is the Pebble block cache size. Default 64 MiB.
	CacheBytes int64
	// MemTableBytes is the Pebble memtable size. Default 64 MiB: member
	// states rewritten batch after batch and outbox entries written and
	// deleted moments later then mostly die in memory instead of being
	// flushed and compacted.
	MemTableBytes uint64
	// Logger receives Pebble's log lines; nil discards them. With a
	// Logger, Pebble's fatal errors are the Logger's to handle (Fatalf
	// must not return); without one, Commit returns them as ErrFailed.
	Logger pebble.Logger
	// FS is the filesystem the store lives on. Default vfs.Default (the
	// operating system's); tests inject faults through it.
	FS vfs.FS
	// SyncEvery is the longest time CommitNoSync goes without an fsync:
	// a CommitNoSync later than that after the last synced commit is
	// synced. It bounds what an operating-system crash can take and
	// brings a failed write (a full disk) to light within that time,
	// since writes that are not synced fail silently. Default 1 s.
	SyncEvery time.Duration
}

// Store is the engine's Pebble database.
type Store struct {
	db     *pebble.DB
	failed atomic.Bool // a commit failed fatally: the DB must not be used
	// syncEvery and lastSync (unix nanoseconds) pace CommitNoSync's
	// fsyncs.
	syncEvery time.Duration
	lastSync  atomic.Int64
	unsynced  atomic.Bool // a commit since the last sync was not synced
	// reads counts Get and Scan calls on the store and its batches.
	reads atomic.Int64
}

var (
	_ Reader = (*Store)(nil)
	_ Reader = (*Batch)(nil)
	_ Writer = (*Batch)(nil)
)

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}

// Fatalf must not return (Pebble's contract). It panics with a
// fatalError, which Commit turns back into an error (ErrFailed) when the
// failure happened in the commit it runs.
func (quietLogger) Fatalf(format string, args ...any) {
	fe := fatalError{msg: fmt.Sprintf(format, args...)}
	for _, a := range args {
		if err, ok := a.(error); ok {
			fe.cause = err
			break
		}
	}
	panic(fe)
}

// fatalError is a fatal Pebble error raised through quietLogger.Fatalf.
type fatalError struct {
	msg   string
	cause error
}

// Open opens (creating if needed) the store in dir.
func Open(dir string, o Options) (*Store, error) {
	if o.CacheBytes == 0 {
		o.CacheBytes = 64 << 20
	}
	if o.MemTableBytes == 0 {
		o.MemTableBytes = 64 << 20
	}
	cache := pebble.NewCache(o.CacheBytes)
	defer cache.Unref()
	opts := &pebble.Options{Cache: cache, Logger: o.Logger, Merger: postingMergeOperator, MemTableSize: o.MemTableBytes, FS: o.FS}
	// Bloom filters on every level: most point reads on the record path
	// are for keys that do not exist yet (a new activity id, a new
	// member), which a filter answers without reading data blocks.
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	if opts.Logger == nil {
		opts.Logger = quietLogger{}
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("state: open %s: %w", dir, err)
	}
	st := &Store{db: db, syncEvery: o.SyncEvery}
	if st.syncEvery <= 0 {
		st.syncEvery = time.Second
	}
	st.lastSync.Store(time.Now().UnixNano())
	return st, nil
}

// Close closes the store. After ErrFailed it releases the files and
// returns nil: the error was reported by Commit, and the next Open
// recovers from what is on disk.
func (s *Store) Close() (err error) {
	if s.db == nil {
		return ErrClosed
	}
	db := s.db
	s.db = nil
	if s.failed.Load() {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(fatalError); !ok {
					panic(r)
				}
			}
			err = nil
		}()
	}
	err = db.Close()
	if err != nil {
		return fmt.Errorf("state: close: %w", err)
	}
	return nil
}

// Get implements Reader.
func (s *Store) Get(key []byte) ([]byte, bool, error) {
	s.reads.Add(1)
	return get(s.db, key)
}

// Scan implements Reader.
func (s *Store) Scan(lower, upper []byte, fn func(k, v []byte) bool) error {
	s.reads.Add(1)
	return scan(s.db, lower, upper, fn)
}

// Reads counts the Get and Scan calls made on the store and its batches
// since it was opened (the engine's record path makes none).
func (s *Store) Reads() int64 { return s.reads.Load() }

// DiskBytes is the size of the database on disk.
func (s *Store) DiskBytes() uint64 {
	if s.db == nil {
		return 0
	}
	m := s.db.Metrics()
	return m.DiskSpaceUsage()
}

// Flush flushes memtables to disk (tests and tooling).
func (s *Store) Flush() error { return s.db.Flush() }

type getter interface {
	Get(key []byte) ([]byte, io.Closer, error)
	NewIter(o *pebble.IterOptions) (*pebble.Iterator, error)
}

func get(g getter, key []byte) ([]byte, bool, error) {
	v, closer, err := g.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("state: get: %w", err)
	}
	out := append([]byte(nil), v...)
	if err := closer.Close(); err != nil {
		return nil, false, fmt.Errorf("state: get: %w", err)
	}
	return out, true, nil
}

func scan(g getter, lower, upper []byte, fn func(k, v []byte) bool) error {
	it, err := g.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("state: scan: %w", err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return fmt.Errorf("state: scan: %w", err)
		}
		if !fn(it.Key(), v) {
			break
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("state: scan: %w", err)
	}
	return nil
}

// Batch is an atomic set of writes that also reads its own writes.
type Batch struct {
	b *pebble.Batch
	s *Store
}

// NewBatch starts a batch.
func (s *Store) NewBatch() *Batch { return &Batch{b: s.db.NewIndexedBatch(), s: s} }

// NewWriteBatch starts a batch that only writes: cheaper than NewBatch, and
// its Get and Scan return an error.
func (s *Store) NewWriteBatch() *Batch { return &Batch{b: s.db.NewBatch(), s: s} }

// Get implements Reader.
func (b *Batch) Get(key []byte) ([]byte, bool, error) {
	b.s.reads.Add(1)
	return get(b.b, key)
}

// Scan implements Reader.
func (b *Batch) Scan(lower, upper []byte, fn func(k, v []byte) bool) error {
	b.s.reads.Add(1)
	return scan(b.b, lower, upper, fn)
}

// Set implements Writer.
func (b *Batch) Set(key, value []byte) error { return wrap(b.b.Set(key, value, nil)) }

// Delete implements Writer.
func (b *Batch) Delete(key []byte) error { return wrap(b.b.Delete(key, nil)) }

// MergePosting merges a posting-list delta into key (see posting.go).
func (b *Batch) MergePosting(key, delta []byte) error { return wrap(b.b.Merge(key, delta, nil)) }

// DeleteRange implements Writer.
func (b *Batch) DeleteRange(start, end []byte) error {
	return wrap(b.b.DeleteRange(start, end, nil))
}

// Len is the size of the batch's representation in bytes.
func (b *Batch) Len() int { return b.b.Len() }

// Empty reports whether the batch holds no writes.
func (b *Batch) Empty() bool { return b.b.Empty() }

// Commit applies the batch atomically and durably (fsync). When the write
// to Pebble's log fails it returns an error wrapping ErrFailed and the
// cause, and every later Commit returns ErrFailed.
func (b *Batch) Commit() error { return b.commit(true) }

// CommitNoSync applies the batch atomically without waiting for an fsync,
// except when the last synced commit is older than Options.SyncEvery. A
// crash (even of the process alone) can lose it, and any batch committed
// after it, but never part of it, and batches stay ordered: what survives
// is a prefix of the commits. A failed write surfaces at the next synced
// commit, as ErrFailed.
func (b *Batch) CommitNoSync() error {
	return b.commit(time.Duration(time.Now().UnixNano()-b.s.lastSync.Load()) >= b.s.syncEvery)
}

func (b *Batch) commit(sync bool) (err error) {
	if b.s.failed.Load() {
		return fmt.Errorf("state: commit: %w", ErrFailed)
	}
	defer func() {
		// Pebble reports a failed log write through Logger.Fatalf
		// (quietLogger panics with a fatalError); any other panic is
		// not ours to handle.
		if r := recover(); r != nil {
			fe, ok := r.(fatalError)
			if !ok {
				panic(r)
			}
			b.s.failed.Store(true)
			err = fmt.Errorf("state: commit: %w: %s", ErrFailed, fe.msg)
			if fe.cause != nil {
				err = fmt.Errorf("state: commit: %w: %w", ErrFailed, fe.cause)
			}
		}
	}()
	opts := pebble.NoSync
	if sync {
		opts = pebble.Sync
	}
	if err := b.b.Commit(opts); err != nil {
		return fmt.Errorf("state: commit: %w", err)
	}
	if sync {
		b.s.lastSync.Store(time.Now().UnixNano())
		b.s.unsynced.Store(false)
	} else {
		b.s.unsynced.Store(true)
	}
	return b.b.Close()
}

// SyncIfDue syncs the log when a commit since the last sync was not
// synced and that sync is older than Options.SyncEvery: called
// periodically, it bounds the time a failed unsynced write (a full disk)
// stays unnoticed when no commit follows it. It returns an error wrapping
// ErrFailed as Commit does.
func (s *Store) SyncIfDue() error {
	if !s.unsynced.Load() || time.Duration(time.Now().UnixNano()-s.lastSync.Load()) < s.syncEvery {
		return nil
	}
	b := &Batch{b: s.db.NewBatch(), s: s}
	if err := b.b.LogData(nil, nil); err != nil {
		_ = b.b.Close()
		return fmt.Errorf("state: sync: %w", err)
	}
	return b.commit(true)
}

// Close discards an uncommitted batch.
func (b *Batch) Close() error { return b.b.Close() }

func wrap(err error) error {
	if err != nil {
		return fmt.Errorf("state: write: %w", err)
	}
	return nil
}
