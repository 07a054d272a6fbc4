package e2e

import (
	"testing"
	"time"
)

// TestDefinitionDeadLettersAfterTakeover: dead letters of invalid
// definitions are published by the instance that owns member partition 0
// (serve.go, flushDefinitionOutbox). Every instance reads the definitions
// and queues their dead letters in its own outbox; when an instance that
// still holds them becomes the owner of partition 0 after another instance
// published them (here: a replacement instance after a graceful stop), the
// progress marker names the other instance, so nothing tells which were
// published, and it publishes them all again: each invalid definition is
// dead-lettered twice.
func TestDefinitionDeadLettersAfterTakeover(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := newWorkload(defaultWorkloadConfig(seed(t, 13)))
	ctx := e.ctx(5 * time.Minute)
	if err := e.produce(ctx, w.defs); err != nil {
		t.Fatal(err)
	}
	a := e.newServe("a")
	a.start()
	a.waitReady(time.Minute)
	var recs []wrec
	recs = append(recs, w.initial()...)
	recs = append(recs, w.batch(300)...)
	if err := e.produce(ctx, recs); err != nil {
		t.Fatal(err)
	}
	e.waitCaughtUp(2*time.Minute, w.deadLetters(), a)
	e.verify(w.reference(t), w.deadLetters())
	if code := a.terminate(time.Minute); code != 0 {
		t.Fatalf("serve a exited with %d", code)
	}

	// b replaces a: it reads the definitions, dead-letters the invalid
	// ones in its outbox, gets every partition, 0 included.
	b := e.newServe("b")
	b.start()
	b.waitReady(time.Minute)
	e.waitFor(2*time.Minute, "b to own every partition", func() (bool, string) {
		return len(b.owned()) == numPartitions, fmtSet(b.owned())
	})
	more := w.batch(100)
	if err := e.produce(ctx, more); err != nil {
		t.Fatal(err)
	}
	e.waitCaughtUp(2*time.Minute, w.deadLetters(), b) // fails: 2 more dead letters than records
	e.verify(w.reference(t), w.deadLetters())
}
