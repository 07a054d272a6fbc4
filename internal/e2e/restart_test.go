package e2e

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
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

// TestShutdownLeavesGroup runs two instances, stops one with SIGTERM and
// checks that it left the consumer group before it exited: its static
// member is gone at once (without the explicit leave it would stay until
// its session timed out), and the other instance takes every partition
// over. The output stays exact.
func TestShutdownLeavesGroup(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	wc := defaultWorkloadConfig(seed(t, 43))
	wc.InvalidDefinitions = false // see TestDefinitionDeadLettersAfterTakeover
	w := newWorkload(wc)
	ctx := e.ctx(6 * time.Minute)
	if err := e.produce(ctx, w.defs); err != nil {
		t.Fatal(err)
	}
	a, b := e.newServe("a"), e.newServe("b")
	a.start()
	a.waitReady(time.Minute)
	b.start()
	b.waitReady(time.Minute)
	e.waitShared(2*time.Minute, a, b)
	var recs []wrec
	recs = append(recs, w.initial()...)
	recs = append(recs, w.batch(300)...)
	if err := e.produce(ctx, recs); err != nil {
		t.Fatal(err)
	}
	e.waitCaughtUp(3*time.Minute, w.deadLetters(), a, b)

	aMember := "smartgroups-" + instanceOf(t, a.runLog(1))
	if got := e.groupInstances(ctx); !slices.Contains(got, aMember) {
		t.Fatalf("group members %v lack a's static member %s", got, aMember)
	}
	if code := a.terminate(time.Minute); code != 0 {
		t.Fatalf("serve a exited with status %d after SIGTERM; log:\n%s", code, tail(a.logPath(), 30))
	}
	if got := e.groupInstances(ctx); slices.Contains(got, aMember) {
		t.Errorf("a's static member %s is still in the group after a exited: %v", aMember, got)
	}
	if !strings.Contains(a.runLog(1), `msg="left the consumer group"`) {
		t.Errorf("a's log lacks the leave:\n%s", tail(a.logPath(), 20))
	}
	e.waitFor(2*time.Minute, "b to own every partition", func() (bool, string) {
		return len(b.owned()) == numPartitions, "b owns " + fmtSet(b.owned())
	})
	if err := e.produce(ctx, w.batch(300)); err != nil {
		t.Fatal(err)
	}
	e.waitCaughtUp(3*time.Minute, w.deadLetters(), b)
	e.verify(w.reference(t), w.deadLetters())
}

// groupInstances returns the group.instance.id of every member of the
// deployment's consumer group ("" for a dynamic member).
func (e *env) groupInstances(ctx context.Context) []string {
	e.t.Helper()
	described, err := e.adm.DescribeGroups(ctx, e.cfg.GroupID)
	if err != nil {
		e.t.Fatalf("describing group %s: %v", e.cfg.GroupID, err)
	}
	var ids []string
	for _, m := range described[e.cfg.GroupID].Members {
		id := ""
		if m.InstanceID != nil {
			id = *m.InstanceID
		}
		ids = append(ids, id)
	}
	return ids
}
