package e2e

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// TestRestartAfterKillTiming measures, on a real broker only
// (KAFKA_BROKERS), how long an instance restarted on its data dir after a
// SIGKILL takes to commit output again: from the restart to its first
// committed output transaction, while input keeps flowing. It prints the
// figure; it asserts only that the output stays exact (a time threshold
// would make the test depend on the machine).
//
// With a dynamic group member the restart waits for the killed member's
// session to expire (45s by default); with a static member (the instance
// id of the data dir as group.instance.id) the broker hands the restarted
// instance its old assignment at once.
func TestRestartAfterKillTiming(t *testing.T) {
	if realBrokers() == nil {
		t.Skip("KAFKA_BROKERS is not set: this measurement is only meaningful on Apache Kafka")
	}
	t.Parallel()
	e := newEnv(t)
	w := newWorkload(defaultWorkloadConfig(seed(t, 41)))
	ctx := e.ctx(6 * time.Minute)
	if err := e.produce(ctx, w.defs); err != nil {
		t.Fatal(err)
	}
	var recs []wrec
	recs = append(recs, w.initial()...)
	recs = append(recs, w.batch(3000)...)

	s := e.newServe("a")
	s.start()
	s.waitReady(time.Minute)
	pr := e.producePaced(ctx, recs, 90*time.Second, 20)
	e.waitFor(2*time.Minute, "serve to own every partition and commit output", func() (bool, string) {
		return len(s.owned()) == numPartitions && commits(ctx, s) >= 1, "owns " + fmtSet(s.owned())
	})
	s.kill()

	start := time.Now()
	s.start()
	var ready time.Duration
	for commits(ctx, s) < 1 {
		if ready == 0 && s.isReady() {
			ready = time.Since(start)
		}
		if !s.running() {
			t.Fatalf("the restarted run exited; log:\n%s", tail(s.logPath(), 40))
		}
		if ctx.Err() != nil {
			t.Fatalf("the restarted run committed nothing: %v", ctx.Err())
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(start)
	t.Logf("restart after SIGKILL: ready after %v, first committed output transaction after %v",
		ready.Round(time.Millisecond), took.Round(time.Millisecond))

	pr.wait(t, 3*time.Minute)
	e.waitCaughtUp(3*time.Minute, w.deadLetters(), s)
	e.verify(w.reference(t), w.deadLetters())
}

// isReady reports whether the current run answers /readyz with 200.
func (p *serveProc) isReady() bool {
	return p.readyzStatus() == http.StatusOK
}

// readyzStatus is the status code of the current run's /readyz, 0 when it
// does not answer.
func (p *serveProc) readyzStatus() int {
	resp, err := httpClient.Get("http://" + p.addr() + "/readyz")
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}
