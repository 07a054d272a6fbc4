package e2e

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/smartgroups/smartgroups/engine"
)

// verifyAccess reads the access topic read_committed and checks the
// guarantees of SPEC §4.3: per key, seq +1 from 1, grant and revoke
// alternating from grant (no lost or duplicated change), the record key
// and partition of the event, a grant naming the groups giving it; and
// that the keys whose last op is grant are want.
func (e *env) verifyAccess(want map[string]bool) {
	e.t.Helper()
	ctx := e.ctx(2 * time.Minute)
	recs, err := e.readTopic(ctx, e.cfg.AccessTopic(), true, false)
	if err != nil {
		e.t.Fatalf("reading the access topic: %v", err)
	}
	var problems []string
	bad := func(format string, args ...any) {
		if len(problems) < 50 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	last := map[string]engine.AccessEvent{}
	grants := 0
	for _, r := range recs {
		var ev engine.AccessEvent
		if err := decodeStrict(r.Value, &ev); err != nil {
			e.t.Fatalf("access %d@%d: %v: %s", r.Partition, r.Offset, err, r.Value)
		}
		k := ev.Key()
		if string(r.Key) != k || r.Partition != partitionOf(k) {
			bad("key %q at %d@%d holds the event of %q", r.Key, r.Partition, r.Offset, k)
		}
		prev, seen := last[k]
		wantSeq, wantOp := uint64(1), engine.OpGrant
		if seen {
			wantSeq = prev.Seq + 1
			if prev.Op == engine.OpGrant {
				wantOp = engine.OpRevoke
			}
		}
		switch {
		case ev.Seq < wantSeq:
			bad("duplicate: key %q seq %d (%s) at %d@%d", k, ev.Seq, ev.Op, r.Partition, r.Offset)
		case ev.Seq > wantSeq:
			bad("missing change: key %q seq %d (%s) at %d@%d, want seq %d", k, ev.Seq, ev.Op, r.Partition, r.Offset, wantSeq)
		case ev.Op != wantOp:
			bad("ops out of order: key %q seq %d is %s, want %s", k, ev.Seq, ev.Op, wantOp)
		case (ev.Op == engine.OpGrant) != (len(ev.Groups) > 0):
			bad("key %q seq %d: %s with groups %v", k, ev.Seq, ev.Op, ev.Groups)
		}
		if ev.Op == engine.OpGrant {
			grants++
		}
		last[k] = ev
	}
	got := map[string]bool{}
	for k, ev := range last {
		if ev.Op == engine.OpGrant {
			got[k] = true
		}
	}
	e.t.Logf("access topic: %d events (%d grants) over %d keys, %d with access; expected %d", len(recs), grants, len(last), len(got), len(want))
	if len(problems) > 0 {
		e.t.Errorf("access topic breaks the per-key guarantees:\n  %s", strings.Join(problems, "\n  "))
	}
	var missing, extra []string
	for k := range want {
		if !got[k] {
			missing = append(missing, k)
		}
	}
	for k := range got {
		if !want[k] {
			extra = append(extra, k)
		}
	}
	if len(missing)+len(extra) > 0 {
		sort.Strings(missing)
		sort.Strings(extra)
		e.t.Errorf("final access differs from the reference: %d missing (first: %v), %d extra (first: %v)",
			len(missing), missing[:min(20, len(missing))], len(extra), extra[:min(20, len(extra))])
	}
}
