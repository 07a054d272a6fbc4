package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestGracefulShutdown stops serve with SIGTERM while input flows: it must
// finish the batch in flight, publish it, leave the group and exit 0 within
// a bounded time; a restart on the same data dir resumes, and the output is
// still exact.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := newWorkload(defaultWorkloadConfig(seed(t, 11)))
	ctx := e.ctx(8 * time.Minute)
	if err := e.produce(ctx, w.defs); err != nil {
		t.Fatal(err)
	}
	var recs []wrec
	recs = append(recs, w.initial()...)
	recs = append(recs, w.batch(2000)...)

	s := e.newServe("a")
	s.start()
	s.waitReady(time.Minute)
	pr := e.producePaced(ctx, recs, 15*time.Second, 25)

	// Mid-stream: the instance owns every partition and has published
	// output, and input is still coming.
	e.waitFor(2*time.Minute, "serve to process input", func() (bool, string) {
		m, err := s.metrics(ctx)
		if err != nil {
			return false, err.Error()
		}
		commits := m.sum(`smartgroups_transactions_total{result="commit"}`)
		return len(s.owned()) == numPartitions && commits >= 5 && pr.progress() >= len(recs)/4,
			"owned " + fmtSet(s.owned()) + "; " + m.summary()
	})
	if pr.finished() {
		t.Log("note: the producer finished before SIGTERM; the shutdown was not mid-stream")
	}
	if code := s.terminate(time.Minute); code != 0 {
		t.Fatalf("serve exited with status %d after SIGTERM, want 0; log:\n%s", code, tail(s.logPath(), 30))
	}
	log := s.runLog(1)
	for _, want := range []string{`msg="partitions revoked"`, `msg="shut down"`} {
		if !strings.Contains(log, want) {
			t.Errorf("serve log after SIGTERM lacks %s", want)
		}
	}
	t.Logf("serve stopped gracefully with %d of %d records produced", pr.progress(), len(recs))

	s.start()
	s.waitReady(time.Minute)
	pr.wait(t, 2*time.Minute)
	e.waitCaughtUp(4*time.Minute, w.deadLetters(), s)
	e.verify(w.reference(t), w.deadLetters())
}
