package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/internal/reference"
	"github.com/smartgroups/smartgroups/internal/scenario"
	"github.com/smartgroups/smartgroups/state"
)

// committedLog is what a runtime's Kafka transactions committed: the
// events (in order) and the partition's changelog, an entry's offset being
// its index.
type committedLog struct {
	events    []engine.Event
	changelog []engine.ChangelogEntry
}

// commit appends a result's output as one committed transaction and
// returns the offset of its last changelog entry per outbox entry.
func (c *committedLog) commit(res *engine.Result) map[uint64]int64 {
	c.events = append(c.events, res.Events...)
	offs := map[uint64]int64{}
	for _, o := range res.Outbox {
		c.changelog = append(c.changelog, o.Changelog...)
		offs[o.ID] = int64(len(c.changelog)) - 1
	}
	return offs
}

func openDeferred(t *testing.T, dir string, now int64) (*engine.Engine, *state.Store) {
	t.Helper()
	st, err := state.Open(dir, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := engine.DefaultConfig()
	cfg.Clock, cfg.Now = engine.ClockFixed, now
	cfg.Changelog, cfg.DeferPartitionWrites, cfg.DefinitionOffsets = true, true, true
	eng, err := engine.New(st, cfg)
	if err != nil {
		_ = st.Close()
		t.Fatal(err)
	}
	return eng, st
}

// deferredRun drives an engine as serve does: every result is committed
// (appended to the log) and persisted lag batches later, with the offset
// of its last changelog entry.
type deferredRun struct {
	t     *testing.T
	eng   *engine.Engine
	log   *committedLog
	lag   int
	queue []pendingPersist
}

type pendingPersist struct {
	id  uint64
	off int64
}

func (r *deferredRun) commit(res *engine.Result) {
	r.t.Helper()
	offs := r.log.commit(res)
	for _, o := range res.Outbox {
		if len(o.Changelog) > 0 {
			r.queue = append(r.queue, pendingPersist{o.ID, offs[o.ID]})
		}
	}
	for len(r.queue) > r.lag {
		p := r.queue[0]
		r.queue = r.queue[1:]
		if err := r.eng.Persist(0, p.id, engine.SnapshotTag{Offset: p.off, Time: time.Now()}); err != nil {
			r.t.Fatal(err)
		}
	}
}

// restore brings a reopened engine's partition 0 up to the committed log:
// from its snapshot tag when it has one (unless full), else from scratch;
// with interrupt, the restore is first cut off halfway (the store keeps
// what it applied, tagged) and the engine reopened.
func restore(t *testing.T, dir string, now int64, log *committedLog, full, interrupt bool) (*engine.Engine, *state.Store) {
	t.Helper()
	eng, st := openDeferred(t, dir, now)
	from := int64(0)
	tag, ok, err := eng.Snapshot(0)
	if err != nil {
		t.Fatal(err)
	}
	if ok && !full {
		from = tag.Offset + 1
	} else if err := eng.DropPartition(0); err != nil {
		t.Fatal(err)
	}
	tail := log.changelog[from:]
	if interrupt && len(tail) > 1 {
		half := len(tail) / 2
		if err := eng.RestorePartition(0, tail[:half], engine.SnapshotTag{Offset: from + int64(half) - 1, Time: time.Now()}, false); err != nil {
			t.Fatal(err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		return restore(t, dir, now, log, false, false)
	}
	through := engine.NoSnapshotTag
	if len(tail) > 0 {
		through = engine.SnapshotTag{Offset: int64(len(log.changelog)) - 1, Time: time.Now()}
	}
	if err := eng.RestorePartition(0, tail, through, true); err != nil {
		t.Fatal(err)
	}
	return eng, st
}

// TestDeferredCrashRestore runs random scenarios through an engine that
// defers its partition writes, as serve does, and "crashes" it at a random
// batch: the batches before it are committed (some persisted, the last
// few not), the batch at it is processed but not committed. A new engine
// on the same store restores the partition from the snapshot and the
// committed changelog after its tag (or from scratch, or with a restore
// that is itself interrupted), resumes at the restored input positions,
// and finishes the input. The committed events, then the new engine's,
// must be a well-formed history per key (no duplicate, no gap) ending with
// the reference evaluator's memberships, and the restored positions must
// be exactly those of the committed batches.
func TestDeferredCrashRestore(t *testing.T) {
	seeds := 12
	if testing.Short() {
		seeds = 3
	}
	for seed := int64(1); seed <= int64(seeds); seed++ {
		for _, mode := range []string{"snapshot", "full", "interrupted"} {
			t.Run(fmt.Sprintf("seed=%d/%s", seed, mode), func(t *testing.T) {
				t.Parallel()
				cfg := scenario.DefaultConfig()
				cfg.Records = 1200
				cfg.Spots = 1 + int(seed%2)
				cfg.MembersPerSpot = 10 + int(seed%3)*10
				runDeferredCrash(t, seed, cfg, mode)
			})
		}
	}
}

func runDeferredCrash(t *testing.T, seed int64, cfg scenario.Config, mode string) {
	lines := scenario.Generate(seed, cfg)
	recs := make([]engine.Record, len(lines))
	ref := reference.New(cfg.Now, false)
	for i, l := range lines {
		recs[i] = l.Record(int64(i))
		ref.Apply(recs[i])
	}
	rnd := rand.New(rand.NewPCG(uint64(seed), 7))
	batch := []int{1, 7, 64}[rnd.IntN(3)]
	lag := rnd.IntN(4)
	crash := rnd.IntN(len(recs)/batch) * batch // first record of the batch that never commits
	ctx := context.Background()
	dir := t.TempDir()
	log := &committedLog{}

	eng, st := openDeferred(t, dir, cfg.Now)
	run := &deferredRun{t: t, eng: eng, log: log, lag: lag}
	res, err := eng.Assign(ctx, []int32{0})
	if err != nil {
		t.Fatal(err)
	}
	run.commit(res)
	for i := 0; i < crash; i += batch {
		res, err := eng.Process(ctx, recs[i:min(i+batch, crash)])
		if err != nil {
			t.Fatal(err)
		}
		run.commit(res)
	}
	if crash < len(recs) {
		// Applied to memory (and its definitions to the store), never
		// committed.
		if _, err := eng.Process(ctx, recs[crash:min(crash+batch, len(recs))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	eng, st = restore(t, dir, cfg.Now, log, mode == "full", mode == "interrupted")
	t.Cleanup(func() { _ = st.Close() })
	wantPos := map[string]int64{}
	for _, r := range recs[:crash] {
		if r.Kind != "" && r.Kind != engine.KindDefinitions {
			wantPos[r.Topic] = r.Offset + 1
		}
	}
	for topic, want := range wantPos {
		kind, _ := engine.ParseKind(topic)
		got, ok, err := eng.Position(kind, topic, 0)
		if err != nil || !ok || got != want {
			t.Fatalf("restored position of %s: %d (found %v, %v), want %d", topic, got, ok, err, want)
		}
	}
	run = &deferredRun{t: t, eng: eng, log: log, lag: lag}
	res, err = eng.Assign(ctx, []int32{0})
	if err != nil {
		t.Fatal(err)
	}
	run.commit(res)
	for i := crash; i < len(recs); i += batch {
		res, err := eng.Process(ctx, recs[i:min(i+batch, len(recs))])
		if err != nil {
			t.Fatal(err)
		}
		run.commit(res)
	}
	var out bytes.Buffer
	for i := range log.events {
		out.Write(engine.AppendEventJSON(nil, &log.events[i]))
		out.WriteByte('\n')
	}
	t.Logf("batch %d, persist lag %d, crash at record %d of %d, %d events, changelog %d entries", batch, lag, crash, len(recs), len(log.events), len(log.changelog))
	compareSets(t, checkEvents(t, out.Bytes()), ref.Memberships())
}
