package e2e

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// TestKill9WhilePersisting kills serve with SIGKILL at random moments
// while it processes large batches back to back: every batch touches many
// members, so after each Kafka commit the store is busy writing the
// batch's state changes and the snapshot tag, and kills land before,
// during and after those writes. Each restart on the same data dir
// restores every partition from whatever snapshot survived and the
// committed changelog after its tag. The output must still hold every
// transition exactly once and end with the reference's memberships.
func TestKill9WhilePersisting(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sd := seed(t, 41)
	rnd := rand.New(rand.NewPCG(sd, 5))
	wc := defaultWorkloadConfig(sd)
	wc.MembersPerSpot = 800
	w := newWorkload(wc)
	ctx := e.ctx(12 * time.Minute)
	if err := e.produce(ctx, w.defs); err != nil {
		t.Fatal(err)
	}
	var recs []wrec
	recs = append(recs, w.initial()...)
	recs = append(recs, w.batch(6000)...)

	s := e.newServe("a", "--batch-size", "500")
	s.start()
	s.waitReady(time.Minute)
	// Large chunks: each poll brings many members.
	pr := e.producePaced(ctx, recs, 100*time.Second, 400)
	const kills = 3
	behindRuns := 0
	for i := range kills {
		run := s.runCount()
		deadline := time.Now().Add(4 * time.Minute)
		for len(s.owned()) != numPartitions || commits(ctx, s) < 1 {
			if time.Now().After(deadline) || !s.running() {
				t.Fatalf("run %d did not process input (running %v, owns %s)", run, s.running(), fmtSet(s.owned()))
			}
			time.Sleep(2 * time.Millisecond)
		}
		// Right after a commit the batch's changes are being persisted.
		time.Sleep(time.Duration(rnd.Int64N(int64(30 * time.Millisecond))))
		s.kill()
		lag := s.snapshotLag(ctx)
		for _, n := range lag {
			if n > 1 {
				behindRuns++
				break
			}
		}
		t.Logf("kill %d/%d: run %d; %d of %d records produced; snapshot behind the changelog by %v offsets per partition",
			i+1, kills, run, pr.progress(), len(recs), lag)
		s.start()
	}
	s.waitReady(time.Minute)
	pr.wait(t, 3*time.Minute)
	e.waitCaughtUp(6*time.Minute, w.deadLetters(), s)
	e.verify(w.reference(t), w.deadLetters())
	t.Logf("%d of %d kills left a snapshot behind the committed changelog", behindRuns, kills)
}

var restoreFromRE = regexp.MustCompile(`msg="restoring partition from the changelog" partition=(\d+) published_by=\S+ from_offset=(-?\d+)`)

// TestKill9WhileRestoring builds a long changelog with one instance, stops
// it, then starts a second instance on an empty data dir, which must
// restore every partition from the whole changelog, and kills it with
// SIGKILL at random moments of that restore, twice. The store keeps what
// a restore applied, tagged with the changelog offset it reached, so the
// next run resumes the restore from there (or from scratch when nothing
// survived). After the last restart, more input flows; the output must
// hold every transition exactly once and end with the reference's
// memberships.
func TestKill9WhileRestoring(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sd := seed(t, 43)
	rnd := rand.New(rand.NewPCG(sd, 3))
	wc := defaultWorkloadConfig(sd)
	wc.MembersPerSpot = 800
	// An instance that is not the owner of partition 0 would drop them;
	// definition dead letters are covered by the other tests.
	wc.InvalidDefinitions = false
	w := newWorkload(wc)
	ctx := e.ctx(12 * time.Minute)
	if err := e.produce(ctx, w.defs); err != nil {
		t.Fatal(err)
	}
	a := e.newServe("a", "--batch-size", "200")
	a.start()
	a.waitReady(time.Minute)
	var first []wrec
	first = append(first, w.initial()...)
	first = append(first, w.batch(12000)...)
	if err := e.produce(ctx, first); err != nil {
		t.Fatal(err)
	}
	e.waitCaughtUp(5*time.Minute, w.deadLetters(), a)
	if code := a.terminate(time.Minute); code != 0 {
		t.Fatalf("a exited with %d after SIGTERM", code)
	}
	ends, err := e.adm.ListEndOffsets(ctx, e.cfg.ChangelogTopic())
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	t.Logf("changelog: %d offsets over %d partitions", total, numPartitions)

	b := e.newServe("b")
	const kills = 2
	midRestore := 0
	for i := range kills {
		b.start()
		run := b.runCount()
		// Partitions restore one after the other: the first kill comes
		// while partition 1 restores, the second while partition 3 does
		// (after the resumed restores of the others).
		part := []string{"1", "3"}[i]
		deadline := time.Now().Add(3 * time.Minute)
		for !strings.Contains(b.runLog(run), `msg="restoring partition from the changelog" partition=`+part+" ") {
			if time.Now().After(deadline) || !b.running() {
				t.Fatalf("b run %d did not start restoring partition %s (running %v)", run, part, b.running())
			}
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Duration(rnd.Int64N(int64(10 * time.Millisecond))))
		b.kill()
		log := b.runLog(run)
		started := strings.Count(log, `msg="restoring partition from the changelog"`)
		done := strings.Count(log, `msg="partition restored"`)
		if done < numPartitions {
			midRestore++
		}
		t.Logf("kill %d/%d: b run %d started %d restores and finished %d; resumed from: %v; snapshot behind by %v",
			i+1, kills, run, started, done, restoreFrom(log), b.snapshotLag(ctx))
	}
	b.start()
	b.waitReady(time.Minute)
	e.waitFor(3*time.Minute, "b to own every partition", func() (bool, string) {
		return len(b.owned()) == numPartitions, fmtSet(b.owned())
	})
	t.Logf("last run resumed the restores from: %v", restoreFrom(b.runLog(b.runCount())))
	if err := e.produce(ctx, w.batch(600)); err != nil {
		t.Fatal(err)
	}
	e.waitCaughtUp(5*time.Minute, w.deadLetters(), b)
	e.verify(w.reference(t), w.deadLetters())
	t.Logf("%d of %d kills landed before every partition was restored", midRestore, kills)
}

// restoreFrom lists, per restore in a run's log, "partition:offset" where
// it started reading the changelog (-1: from scratch).
func restoreFrom(log string) []string {
	var out []string
	for _, m := range restoreFromRE.FindAllStringSubmatch(log, -1) {
		out = append(out, m[1]+":"+m[2])
	}
	return out
}
