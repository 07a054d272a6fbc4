package e2e

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCrashKill9 kills serve with SIGKILL at random moments while input
// flows, restarting it on the same data dir each time, then lets it catch
// up and checks that the memberships and access topics hold every
// transition exactly once and end with the reference's memberships and
// access, and that every invalid record was dead-lettered exactly once.
//
// Kills alternate between two kinds of moments (E2E_KILL_MODES, a comma
// separated list, overrides the default schedule):
//
//   - processing: a random moment (0-20ms) after the run got every
//     partition and committed its first output: while it catches up with
//     the input that came while it was down (batches back to back), so
//     often between processing a batch in memory, the Kafka commit of its
//     output and the write of its snapshot;
//   - startup: a random moment in the first 100ms of a run, before it
//     joins the group (opening the store, checking topics, loading the
//     definitions);
//   - joining (not in the default schedule): a random moment in the
//     seconds after the run is ready, while it waits for the group to give
//     it the partitions of the killed run. Every such kill leaves a dead
//     member in the middle of a rebalance, which costs a rebalance timeout
//     on Apache Kafka and several minutes on the embedded broker (see the
//     report), too slow for CI.
//
// serve is a static group member (group.instance.id from its data dir): a
// restarted instance replaces its killed incarnation in the group and gets
// its partitions back at once, without waiting for the killed member's
// session (45s) to expire.
func TestCrashKill9(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sd := seed(t, 23)
	rnd := rand.New(rand.NewPCG(sd, 99))
	w := newWorkload(defaultWorkloadConfig(sd))
	ctx := e.ctx(12 * time.Minute)
	if err := e.produce(ctx, w.defs); err != nil {
		t.Fatal(err)
	}
	var recs []wrec
	recs = append(recs, w.initial()...)
	recs = append(recs, w.batch(3000)...)

	kills := 5
	if v := os.Getenv("E2E_KILLS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("E2E_KILLS=%q: want a positive number", v)
		}
		kills = n
	}
	modes := make([]string, kills)
	for i := range modes {
		modes[i] = []string{"processing", "startup"}[i%2]
	}
	if v := os.Getenv("E2E_KILL_MODES"); v != "" {
		modes = strings.Split(v, ",")
		kills = len(modes)
	}
	if len(modes) == 0 || modes[0] != "processing" {
		t.Fatalf("the kill schedule %v must start with a processing kill", modes)
	}

	// Small batches: more transactions, so more moments to be killed in.
	s := e.newServe("a", "--batch-size", "100")
	s.start()
	s.waitReady(time.Minute)
	// Input flows for about 100s, through the kills of the default
	// schedule.
	pr := e.producePaced(ctx, recs, 100*time.Second, 20)

	runsBehind := 0
	for i, mode := range modes {
		run := s.runCount()
		switch mode {
		case "processing":
			// While it is busy: as soon as the run owns the partitions
			// and committed output, a random moment (0-20ms) later. After
			// a restart it is then catching up with the input that came
			// while it was down, batches back to back; the first run
			// follows the live input.
			deadline := time.Now().Add(4 * time.Minute)
			for len(s.owned()) != numPartitions || commits(ctx, s) < 1 {
				if time.Now().After(deadline) || !s.running() {
					t.Fatalf("run %d did not process input (running %v, owns %s)", run, s.running(), fmtSet(s.owned()))
				}
				time.Sleep(2 * time.Millisecond)
			}
			time.Sleep(time.Duration(rnd.Int64N(int64(20 * time.Millisecond))))
		case "startup":
			// A random moment of the start-up, but before the run joins
			// the group: a member that joins and dies mid-rebalance
			// stalls the group (see joining).
			deadline := time.Now().Add(time.Duration(rnd.Int64N(int64(100 * time.Millisecond))))
			for time.Now().Before(deadline) && !strings.Contains(s.runLog(run), `msg="definitions loaded"`) {
				time.Sleep(time.Millisecond)
			}
		case "joining":
			s.waitReady(time.Minute)
			time.Sleep(300*time.Millisecond + time.Duration(rnd.Int64N(int64(3*time.Second))))
		default:
			t.Fatalf("unknown kill mode %q (want processing, startup or joining)", mode)
		}
		if pr.finished() {
			t.Logf("note: kill %d (%s) came after the producer finished", i+1, mode)
		}
		owned := fmtSet(s.owned())
		s.kill()
		lag := s.snapshotLag(ctx)
		behind := 0
		for _, n := range lag {
			if n > 1 { // 1: only the last transaction's commit marker
				behind++
			}
		}
		if behind > 0 {
			runsBehind++
		}
		t.Logf("kill %d/%d (%s): run %d owned %s; %d of %d records produced; snapshot behind the changelog by %v offsets per partition",
			i+1, kills, mode, run, owned, pr.progress(), len(recs), lag)
		s.start()
	}
	s.waitReady(time.Minute)
	pr.wait(t, 3*time.Minute)
	e.waitCaughtUp(6*time.Minute, w.deadLetters(), s)
	want := w.reference(t)
	e.verify(want, w.deadLetters())
	e.verifyAccess(w.referenceAccess(t))

	// A kill left a partition's snapshot behind the committed changelog,
	// and the checks above prove that the restart's replay of that tail
	// (and the re-reading of input whose batch never committed) lost and
	// duplicated nothing. The evidence comes from the killed run's store
	// (snapshot tags behind the changelog's end) and from the output
	// topics (transactions a kill interrupted, aborted when the next run
	// fenced the producer).
	aborted, err := e.abortedTransactions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d of %d kills left a snapshot behind the changelog; %d publishes were interrupted and aborted", runsBehind, kills, aborted)
	if runsBehind == 0 && aborted == 0 {
		t.Log("no kill landed between a batch's processing and its persisted snapshot this time")
	}
}

// commits is the run's count of committed output transactions (-1 when
// /metrics does not answer).
func commits(ctx context.Context, s *serveProc) float64 {
	m, err := s.metrics(ctx)
	if err != nil {
		return -1
	}
	return m.sum(`smartgroups_transactions_total{result="commit"}`)
}
