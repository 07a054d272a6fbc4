package e2e

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	restoreRE  = regexp.MustCompile(`msg="restoring partition from the changelog" partition=(\d+) published_by=(\S+)`)
	instanceRE = regexp.MustCompile(`msg=ready instance=(\S+)`)
)

// restores returns partition -> the instance whose output a log's restores
// started from, for the log lines after offset from.
func restores(log string, from int) map[int32]string {
	out := map[int32]string{}
	if from > len(log) {
		from = len(log)
	}
	for _, m := range restoreRE.FindAllStringSubmatch(log[from:], -1) {
		p, _ := strconv.Atoi(m[1])
		out[int32(p)] = m[2]
	}
	return out
}

func instanceOf(t *testing.T, log string) string {
	t.Helper()
	m := instanceRE.FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no instance id in the serve log")
	}
	return m[1]
}

// waitShared waits until the instances own disjoint, non-empty sets of
// partitions that cover every partition.
func (e *env) waitShared(d time.Duration, procs ...*serveProc) {
	e.t.Helper()
	e.waitFor(d, "the instances to share the partitions", func() (bool, string) {
		seen := map[int32]bool{}
		var state []string
		ok := true
		for _, p := range procs {
			owned := p.owned()
			state = append(state, p.name+" owns "+fmtSet(owned))
			if len(owned) == 0 {
				ok = false
			}
			for part := range owned {
				if seen[part] {
					ok = false
				}
				seen[part] = true
			}
		}
		return ok && len(seen) == numPartitions, strings.Join(state, ", ")
	})
}

// TestRebalanceTakeover runs two instances in one consumer group, kills
// one while input flows, and checks that the survivor takes its partitions
// over by restoring them from the changelog (its own copy of them is stale:
// it owned them before the second instance joined), with exactly-once
// output and the reference's memberships. Then the killed instance comes
// back on its old data dir: it must drop its stale state of the partitions
// it gets and restore them too, and the output stays exact.
func TestRebalanceTakeover(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	wc := defaultWorkloadConfig(seed(t, 31))
	// Definition dead letters are published again by an instance that
	// takes partition 0 over: a known bug, see
	// TestDefinitionDeadLettersAfterTakeover.
	wc.InvalidDefinitions = false
	w := newWorkload(wc)
	ctx := e.ctx(10 * time.Minute)
	if err := e.produce(ctx, w.defs); err != nil {
		t.Fatal(err)
	}

	// A alone processes the start of the first half, all partitions.
	a, b := e.newServe("a"), e.newServe("b")
	a.start()
	a.waitReady(time.Minute)
	e.waitFor(time.Minute, "a to own every partition", func() (bool, string) {
		return len(a.owned()) == numPartitions, fmtSet(a.owned())
	})
	var first []wrec
	first = append(first, w.initial()...)
	first = append(first, w.batch(500)...)
	if err := e.produce(ctx, first); err != nil {
		t.Fatal(err)
	}
	e.waitCaughtUp(3*time.Minute, w.deadLetters(), a)

	// B joins: it gets some partitions and restores them from A's
	// changelog.
	b.start()
	b.waitReady(time.Minute)
	e.waitShared(2*time.Minute, a, b)
	aInstance, bInstance := instanceOf(t, a.runLog(1)), instanceOf(t, b.runLog(1))
	bOwned := b.owned()
	for p := range bOwned {
		if got := restores(b.runLog(1), 0)[p]; got != aInstance {
			t.Errorf("b got partition %d: restored from %q, want a restore from a's output (%s)", p, got, aInstance)
		}
	}
	t.Logf("a owns %s, b owns %s", fmtSet(a.owned()), fmtSet(bOwned))

	// The rest of the first half flows; B is killed mid-stream, once it
	// has published output of its own.
	rest := w.batch(1200)
	pr := e.producePaced(ctx, rest, 12*time.Second, 20)
	e.waitFor(2*time.Minute, "b to process input", func() (bool, string) {
		m, err := b.metrics(ctx)
		if err != nil {
			return false, err.Error()
		}
		commits := m.sum(`smartgroups_transactions_total{result="commit"}`)
		return commits >= 5 && pr.progress() > len(rest)/3, fmt.Sprintf("%d records produced; b: %s", pr.progress(), m.summary())
	})
	bOwned = b.owned()
	aLogAtKill := len(a.runLog(1))
	b.kill()
	t.Logf("b killed with %d of %d records produced; it owned %s", pr.progress(), len(rest), fmtSet(bOwned))
	pr.wait(t, 2*time.Minute)

	// A takes B's partitions over (once B's group session expires) by
	// restoring them from B's changelog.
	e.waitFor(3*time.Minute, "a to take over b's partitions", func() (bool, string) {
		return len(a.owned()) == numPartitions, "a owns " + fmtSet(a.owned())
	})
	got := restores(a.runLog(1), aLogAtKill)
	for p := range bOwned {
		if got[p] != bInstance {
			t.Errorf("a took partition %d over without restoring it from b's output (restores after the kill: %v, b is %s)", p, got, bInstance)
		}
	}

	// Second half, A alone.
	if err := e.produce(ctx, w.batch(1200)); err != nil {
		t.Fatal(err)
	}
	e.waitCaughtUp(3*time.Minute, w.deadLetters(), a)
	e.verify(w.reference(t), w.deadLetters())
	if t.Failed() {
		return
	}

	// B comes back on its old data dir: its state of the partitions it
	// gets is stale (A changed them since), so it must restore them.
	b.start()
	b.waitReady(time.Minute)
	e.waitShared(2*time.Minute, a, b)
	for p := range b.owned() {
		if got := restores(b.runLog(2), 0)[p]; got != aInstance {
			t.Errorf("restarted b got partition %d: restored from %q, want a restore from a's output (%s)", p, got, aInstance)
		}
	}
	if id := instanceOf(t, b.runLog(2)); id != bInstance {
		t.Errorf("restarted b has instance id %s, want %s (same data dir)", id, bInstance)
	}
	t.Logf("after b's restart: a owns %s, b owns %s", fmtSet(a.owned()), fmtSet(b.owned()))

	// A few more records, on every partition: both instances process some.
	var more []wrec
	more = append(more, w.jump(2*time.Hour, 3)...)
	more = append(more, w.sentinels()...)
	if err := e.produce(ctx, more); err != nil {
		t.Fatal(err)
	}
	e.waitCaughtUp(3*time.Minute, w.deadLetters(), a, b)
	e.verify(w.reference(t), w.deadLetters())
}
