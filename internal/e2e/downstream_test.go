package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/smartgroups/smartgroups/examples/downstream/table"
)

// TestDownstreamTable follows the memberships topic with the example
// downstream consumer (examples/downstream/table, segmentio/kafka-go,
// read_committed with its own abort filtering) while serve runs over the
// workload and is killed once mid-stream: the table must report no
// violation (duplicate, gap, op order, key) and end with exactly the
// engine's final memberships, which equal the reference's; a second table
// follows the access topic and must end with the reference's access.
func TestDownstreamTable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := newWorkload(defaultWorkloadConfig(seed(t, 41)))
	ctx := e.ctx(10 * time.Minute)
	if err := e.produce(ctx, w.defs); err != nil {
		t.Fatal(err)
	}
	var recs []wrec
	recs = append(recs, w.initial()...)
	recs = append(recs, w.batch(1500)...)

	tb := table.New()
	tb.Strict = true // nothing compacts the topic during the test
	tctx, stop := context.WithCancel(ctx)
	defer stop()
	terr := make(chan error, 1)
	go func() {
		terr <- table.Run(tctx, table.ReaderConfig{Brokers: e.brokers, Topic: e.cfg.MembershipsTopic()}, tb, nil, nil)
	}()
	at := table.NewAccess()
	at.Strict = true
	aerr := make(chan error, 1)
	go func() {
		aerr <- table.Run(tctx, table.ReaderConfig{Brokers: e.brokers, Topic: e.cfg.AccessTopic()}, at, nil, nil)
	}()

	s := e.newServe("a", "--batch-size", "100")
	s.start()
	s.waitReady(time.Minute)
	pr := e.producePaced(ctx, recs, 10*time.Second, 20)
	e.waitFor(2*time.Minute, "serve to process input", func() (bool, string) {
		m, err := s.metrics(ctx)
		if err != nil {
			return false, err.Error()
		}
		commits := m.sum(`smartgroups_transactions_total{result="commit"}`)
		return len(s.owned()) == numPartitions && commits >= 10, m.summary()
	})
	pr.nextChunk(2 * time.Second)
	time.Sleep(15 * time.Millisecond)
	s.kill() // mid-publish, maybe: the table must skip aborted transactions
	s.start()
	s.waitReady(time.Minute)
	pr.wait(t, 2*time.Minute)
	e.waitCaughtUp(4*time.Minute, w.deadLetters(), s)
	want := w.reference(t)
	h := e.verify(want, w.deadLetters())
	wantAccess := w.referenceAccess(t)
	e.verifyAccess(wantAccess)
	if aborted, err := e.abortedTransactions(ctx); err == nil {
		t.Logf("%d aborted transactions on the output topics", aborted)
	}

	e.waitFor(2*time.Minute, "the downstream table to read every event", func() (bool, string) {
		select {
		case err := <-terr:
			t.Fatalf("downstream table stopped: %v", err)
		default:
		}
		members, keys, applied := tb.Stats()
		return applied >= h.events && len(tb.Violations()) == 0,
			fmt.Sprintf("table: %d events applied of %d, %d keys, %d members, %d violations", applied, h.events, keys, members, len(tb.Violations()))
	})
	e.waitFor(2*time.Minute, "the downstream access table to reach the reference", func() (bool, string) {
		grants, keys, applied := at.Stats()
		return grants == len(wantAccess) && len(at.Violations()) == 0,
			fmt.Sprintf("access table: %d grants of %d, %d keys, %d events, %d violations", grants, len(wantAccess), keys, applied, len(at.Violations()))
	})
	stop()
	if err := <-terr; err != nil {
		t.Fatalf("downstream table: %v", err)
	}
	if err := <-aerr; err != nil {
		t.Fatalf("downstream access table: %v", err)
	}
	gotAccess := map[string]bool{}
	for k, in := range at.Snapshot() {
		if in {
			gotAccess[k] = true
		}
	}
	if d := diffSets(gotAccess, wantAccess, &history{}); d != "" {
		t.Errorf("the downstream access table differs from the reference:\n%s", d)
	}
	if vs := tb.Violations(); len(vs) > 0 {
		var lines []string
		for i, v := range vs {
			if i == 20 {
				break
			}
			lines = append(lines, v.String())
		}
		t.Fatalf("the downstream table saw %d violations:\n  %s", len(vs), strings.Join(lines, "\n  "))
	}
	got := map[string]bool{}
	for k, in := range tb.Snapshot() {
		if in {
			got[k] = true
		}
	}
	members, keys, applied := tb.Stats()
	t.Logf("downstream table: %d members, %d keys, %d events applied", members, keys, applied)
	if applied != h.events {
		t.Errorf("the table applied %d events, the topic holds %d committed ones", applied, h.events)
	}
	if d := diffSets(got, h.final, h); d != "" {
		t.Errorf("the downstream table differs from the engine's final memberships:\n%s", d)
	}
	if d := diffSets(got, want, h); d != "" {
		t.Errorf("the downstream table differs from the reference:\n%s", d)
	}
}
