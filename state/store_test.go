package state

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// diskFull fails every write to a file with ENOSPC, like a full disk.
var diskFull = errorfs.InjectorFunc(func(op errorfs.Op) error {
	switch op.Kind {
	case errorfs.OpFileWrite, errorfs.OpFileWriteAt, errorfs.OpFilePreallocate:
		return &os.PathError{Op: "write", Path: op.Path, Err: syscall.ENOSPC}
	}
	return nil
})

func commitKey(t *testing.T, s *Store, key string) error {
	t.Helper()
	b := s.NewBatch()
	if err := b.Set([]byte(key), []byte("v")); err != nil {
		t.Fatal(err)
	}
	return b.Commit()
}

// TestCommitDiskFull fills the disk under an open store: the commit in
// progress returns ErrFailed wrapping ENOSPC (not a panic), later commits
// return ErrFailed, Close returns, and the store reopened on a disk with
// room again holds what was committed before the fault and not the failed
// commit.
func TestCommitDiskFull(t *testing.T) {
	dir := t.TempDir()
	fault := &errorfs.Toggle{Injector: diskFull}
	s, err := Open(dir, Options{FS: errorfs.Wrap(vfs.Default, fault)})
	if err != nil {
		t.Fatal(err)
	}
	if err := commitKey(t, s, "before"); err != nil {
		t.Fatal(err)
	}
	fault.On()
	err = commitKey(t, s, "during")
	if !errors.Is(err, ErrFailed) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("commit on a full disk: %v, want ErrFailed wrapping ENOSPC", err)
	}
	t.Logf("commit on a full disk: %v", err)
	fault.Off()
	if err := commitKey(t, s, "after"); !errors.Is(err, ErrFailed) {
		t.Fatalf("commit after the failure: %v, want ErrFailed", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close after the failure: %v", err)
	}

	s, err = Open(dir, Options{})
	if err != nil {
		t.Fatalf("reopening after the failure: %v", err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}()
	for key, want := range map[string]bool{"before": true, "during": false, "after": false} {
		_, ok, err := s.Get([]byte(key))
		if err != nil {
			t.Fatal(err)
		}
		if ok != want {
			t.Errorf("key %q present: %v, want %v", key, ok, want)
		}
	}
}

// TestCommitNoSyncDiskFull checks that unsynced commits on a full disk
// fail within SyncEvery: the periodic synced commit brings the failed
// write to light.
func TestCommitNoSyncDiskFull(t *testing.T) {
	fault := &errorfs.Toggle{Injector: diskFull}
	s, err := Open(t.TempDir(), Options{FS: errorfs.Wrap(vfs.Default, fault), SyncEvery: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	fault.On()
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; ; i++ {
		b := s.NewBatch()
		if err := b.Set([]byte(fmt.Sprintf("k%d", i)), []byte("v")); err != nil {
			t.Fatal(err)
		}
		if err = b.CommitNoSync(); err != nil {
			if !errors.Is(err, ErrFailed) || !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("commit on a full disk: %v, want ErrFailed wrapping ENOSPC", err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("unsynced commits on a full disk never failed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
