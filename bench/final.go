package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/smartgroups/smartgroups/engine"
)

// eventTally reads file mode's output lines (membership events): it
// counts them by rule template of the group and, when final is set, keeps
// the memberships they end with.
type eventTally struct {
	comm      *Community
	templates map[string]int
	final     map[string]bool
	partial   []byte
}

func (t *eventTally) Write(p []byte) (int, error) {
	n := len(p)
	if len(t.partial) > 0 {
		p = append(t.partial, p...)
		t.partial = nil
	}
	for {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			break
		}
		if err := t.line(p[:i]); err != nil {
			return 0, err
		}
		p = p[i+1:]
	}
	t.partial = append(t.partial[:0], p...)
	return n, nil
}

func (t *eventTally) line(b []byte) error {
	var ev struct{ Spot, Group, Member, Op string }
	if err := json.Unmarshal(b, &ev); err != nil {
		return fmt.Errorf("bench: output line %q: %w", b, err)
	}
	if t.templates != nil {
		if tpl := t.comm.GroupTemplate(ev.Group); tpl != "" {
			t.templates[tpl]++
		}
	}
	if t.final != nil {
		t.final[ev.Spot+"/"+ev.Group+"/"+ev.Member] = ev.Op == string(engine.OpAdd)
	}
	return nil
}

// members drops the keys whose last op was a remove.
func members(last map[string]bool) map[string]bool {
	out := map[string]bool{}
	for k, in := range last {
		if in {
			out[k] = true
		}
	}
	return out
}

// readMemberships reads the whole memberships topic, read_committed, and
// returns the memberships its last event per key leaves.
func (r *runner) readMemberships(ctx context.Context) (map[string]bool, error) {
	cons, err := r.client(kgo.ConsumeTopics(r.kc.MembershipsTopic()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, err
	}
	defer cons.Close()
	deadline := time.Now().Add(5 * time.Minute)
	last := map[string]bool{}
	// serve has stopped: the topic is read when a poll stays empty.
	for idle := false; !idle; {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("bench: reading %s took over 5 minutes", r.kc.MembershipsTopic())
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		fs := cons.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		idle = fs.NumRecords() == 0
		fs.EachRecord(func(rec *kgo.Record) {
			var ev struct{ Op string }
			if json.Unmarshal(rec.Value, &ev) == nil {
				last[string(rec.Key)] = ev.Op == string(engine.OpAdd)
			}
		})
	}
	return members(last), nil
}
