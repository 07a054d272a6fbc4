package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/smartgroups/smartgroups/connectors/file"
	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/engine/rule"
)

// Naive is the baseline evaluator of the benchmark: it decodes records
// with the engine's decoders, keeps every member in memory, and on each
// member record re-evaluates EVERY smart group of the member's spot with
// rule.Eval and the engine's compiled rules (dependency order, so group
// triggers see this record's flips). It has no indexes, no persistence and
// no timers: it is the "recompute everything the member could be in"
// strategy, as fast as it can be without indexes.
type Naive struct {
	lim     engine.Limits
	defs    *engine.Defs
	members map[string]*naiveMember // "<spot>/<member>"
	acts    map[string]bool         // "<spot>/<member>/<activity id>"
	now     rule.Millis

	Records     int // member records applied
	Events      int // membership flips
	DeadLetters int
	Evals       int // rule evaluations
}

// NewNaive returns an empty evaluator with the event clock.
func NewNaive() *Naive {
	lim := engine.DefaultLimits()
	return &Naive{lim: lim, defs: engine.NewDefs(lim), members: map[string]*naiveMember{}, acts: map[string]bool{}}
}

type naiveMember struct {
	profile rule.Profile
	custom  map[string]json.RawMessage
	form    map[string]json.RawMessage
	lastAct *rule.Millis
	acts    map[string][]rule.Activity
	groups  map[string]bool
}

var _ rule.MemberView = (*naiveMember)(nil)

func (m *naiveMember) Profile() *rule.Profile { return &m.profile }
func (m *naiveMember) Custom(id string) (json.RawMessage, bool) {
	v, ok := m.custom[id]
	return v, ok
}
func (m *naiveMember) Form(id string) (json.RawMessage, bool) {
	v, ok := m.form[id]
	return v, ok
}
func (m *naiveMember) LastActivity() (rule.Millis, bool) {
	if m.lastAct == nil {
		return 0, false
	}
	return *m.lastAct, true
}
func (m *naiveMember) Activities(typ string) ([]rule.Activity, error) { return m.acts[typ], nil }
func (m *naiveMember) InSmartGroup(id string) bool                    { return m.groups[id] }

// Defs returns the definitions applied so far.
func (n *Naive) Defs() *engine.Defs { return n.defs }

// Now is the event clock: the largest ts seen.
func (n *Naive) Now() rule.Millis { return n.now }

// Apply applies one record and re-evaluates every group of the spot for
// its member.
func (n *Naive) Apply(rec engine.Record) { n.apply(rec, true) }

// Load applies one record without evaluating; EvaluateAll then brings the
// memberships up to date.
func (n *Naive) Load(rec engine.Record) { n.apply(rec, false) }

// Observe advances the event clock to a member record's ts without
// applying it: a loader that keeps only some members still sees the
// clock of the whole input.
func (n *Naive) Observe(rec engine.Record) {
	if rec.Kind == engine.KindDefinitions {
		return
	}
	if mc, rerr := engine.DecodeMember(rec, n.lim, n.defs); rerr == nil && mc.TS > n.now {
		n.now = mc.TS
	}
}

// EvaluateAll re-evaluates every group for every member at the current
// now (flips count as Events).
func (n *Naive) EvaluateAll() {
	for k, m := range n.members {
		spot, member, _ := strings.Cut(k, "/")
		n.evaluate(spot, member, m)
	}
}

// Memberships returns the current memberships, as
// "<spot>/<group>/<member>".
func (n *Naive) Memberships() map[string]bool {
	out := map[string]bool{}
	for k, m := range n.members {
		spot, member, _ := strings.Cut(k, "/")
		for g, in := range m.groups {
			if in {
				out[spot+"/"+g+"/"+member] = true
			}
		}
	}
	return out
}

// Members returns how many members the evaluator holds.
func (n *Naive) Members() int { return len(n.members) }

func (n *Naive) apply(rec engine.Record, eval bool) {
	if rec.Kind == engine.KindDefinitions {
		dc, rerr := engine.DecodeDefinition(rec, n.lim)
		if rerr != nil || n.defs.Check(dc) != nil {
			n.DeadLetters++
			return
		}
		n.defs.Apply(dc)
		return
	}
	n.Records++
	mc, rerr := engine.DecodeMember(rec, n.lim, n.defs)
	if rerr != nil {
		n.DeadLetters++
		return
	}
	key := mc.Spot + "/" + mc.Member
	if mc.Erase {
		if m := n.members[key]; m != nil {
			n.Events += len(m.groups)
		}
		delete(n.members, key)
		return
	}
	if mc.TS > n.now {
		n.now = mc.TS
	}
	m := n.members[key]
	if m == nil {
		m = &naiveMember{groups: map[string]bool{}}
		n.members[key] = m
	}
	switch {
	case mc.Profile != nil:
		mc.Profile.Apply(&m.profile)
	case mc.Activity != nil:
		a := *mc.Activity
		if a.ID != "" {
			if n.acts[key+"/"+a.ID] {
				return
			}
			n.acts[key+"/"+a.ID] = true
		}
		if m.acts == nil {
			m.acts = map[string][]rule.Activity{}
		}
		m.acts[a.Type] = append(m.acts[a.Type], rule.Activity{Type: a.Type, Resource: a.Resource, TS: a.TS})
		if m.lastAct == nil || a.TS > *m.lastAct {
			t := a.TS
			m.lastAct = &t
		}
	default:
		merge(&m.custom, mc.Custom)
		merge(&m.form, mc.Form)
	}
	if eval {
		n.evaluate(mc.Spot, mc.Member, m)
	}
}

func merge(dst *map[string]json.RawMessage, patch map[string]json.RawMessage) {
	for id, v := range patch {
		if v == nil {
			delete(*dst, id)
			continue
		}
		if *dst == nil {
			*dst = map[string]json.RawMessage{}
		}
		if old, ok := (*dst)[id]; !ok || !bytes.Equal(old, v) {
			(*dst)[id] = v
		}
	}
}

// evaluate re-evaluates every smart group of the spot for the member.
func (n *Naive) evaluate(spot, member string, m *naiveMember) {
	sd := n.defs.Spot(spot)
	if sd == nil {
		return
	}
	eligible := rule.Eligible(m.profile.StatusValue())
	for _, gid := range sd.Order() {
		in := false
		if eligible && !sd.Blacklist[gid][member] {
			n.Evals++
			v, err := rule.Eval(sd.Groups[gid].Compiled(), m, n.now)
			in = err == nil && v
		}
		if in != m.groups[gid] {
			n.Events++
			if in {
				m.groups[gid] = true
			} else {
				delete(m.groups, gid)
			}
		}
	}
}

// Recompute re-evaluates every group for every member at the current now
// (time-driven changes included) and returns the member count per
// "<spot>/<group>".
func (n *Naive) Recompute() map[string]int {
	out := map[string]int{}
	for _, k := range slices.Sorted(maps.Keys(n.members)) {
		spot, member, _ := strings.Cut(k, "/")
		m := n.members[k]
		n.evaluate(spot, member, m)
		for g := range m.groups {
			out[spot+"/"+g]++
		}
	}
	return out
}

// EachMember calls fn for every member in key order.
func (n *Naive) EachMember(fn func(spot, member string, m MemberState)) {
	for _, k := range slices.Sorted(maps.Keys(n.members)) {
		spot, member, _ := strings.Cut(k, "/")
		m := n.members[k]
		fn(spot, member, MemberState{Profile: &m.profile, Custom: m.custom, Form: m.form, Activities: m.acts})
	}
}

// MemberState is a read-only view of a member of the naive evaluator.
type MemberState struct {
	Profile    *rule.Profile
	Custom     map[string]json.RawMessage
	Form       map[string]json.RawMessage
	Activities map[string][]rule.Activity
}

// naive runs the naive evaluator over the initial load, then (timed) over
// the first NaiveEvents records of the live stream. Its cost per record
// depends on the member's own state and the spot's groups, not on the
// other members, so it loads only the members that prefix touches (all of
// them when the PostgreSQL comparator needs the whole state), applies
// their initial load without evaluating and evaluates each once, untimed,
// before the timed prefix: the memberships are those evaluating every
// initial-load record would leave, since the initial load has one ts.
func (r *runner) naive(context.Context) error {
	dd := &r.res.Details
	limit := prefix(r.o.NaiveEvents, DefaultNaiveEvents, r.res.Events)
	var touched map[string]bool
	if r.o.Postgres == "" && !r.keepFinal {
		var err error
		if touched, err = liveKeys(r.live, limit); err != nil {
			return err
		}
	}
	n := NewNaive()
	one := func(path string, limit int, apply func(engine.Record)) (int, time.Duration, error) {
		f, err := os.Open(path)
		if err != nil {
			return 0, 0, err
		}
		defer func() { _ = f.Close() }()
		var in io.Reader = bufio.NewReaderSize(f, 1<<20)
		if limit >= 0 {
			in = &lineLimiter{r: in, left: limit}
		}
		src := file.NewSource(in)
		t := time.Now()
		applied := 0
		for {
			recs, err := src.Next(1000)
			for _, rec := range recs {
				apply(rec)
			}
			applied += len(recs)
			if errors.Is(err, io.EOF) {
				return applied, time.Since(t), nil
			}
			if err != nil {
				return 0, 0, err
			}
		}
	}
	_, ld, err := one(r.load, -1, func(rec engine.Record) {
		if rec.Kind == engine.KindDefinitions || touched == nil || touched[string(rec.Key)] {
			n.Load(rec)
		} else {
			n.Observe(rec)
		}
	})
	if err != nil {
		return err
	}
	t := time.Now()
	n.EvaluateAll()
	dd.NaiveMembers = n.Members()
	r.log("naive: initial load of %d members in %s, evaluated in %s", dd.NaiveMembers, ld.Round(time.Millisecond),
		time.Since(t).Round(time.Millisecond))
	records, events, evals := n.Records, n.Events, n.Evals
	_, d, err := one(r.live, limit, n.Apply)
	if err != nil {
		return err
	}
	dd.Naive, dd.NaiveEvents, dd.NaiveEvals = d, n.Events-events, n.Evals-evals
	dd.NaiveRecords = n.Records - records
	r.res.NaiveEventsPerSec = float64(dd.NaiveRecords) / d.Seconds()
	if r.o.Postgres != "" { // the comparator reads the final member state
		r.naiveModel = n
	}
	if r.keepFinal {
		// No timers: bring every member to the stream's last instant, as
		// the engine's timers do, then read the memberships.
		n.EvaluateAll()
		r.finalNaive = n.Memberships()
	}
	r.log("naive: %d of %d live records in %s: %.0f records/s (%d rule evaluations, %d flips)", dd.NaiveRecords, r.res.Events,
		d.Round(time.Millisecond), r.res.NaiveEventsPerSec, dd.NaiveEvals, dd.NaiveEvents)
	return nil
}

// liveKeys returns the record keys (spot/member) of the first limit lines
// of a live NDJSON file.
func liveKeys(path string, limit int) (map[string]bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(bufio.NewReaderSize(f, 1<<20))
	sc.Buffer(make([]byte, 0, 1<<20), file.MaxLineBytes)
	keys := map[string]bool{}
	var l struct {
		Key string `json:"key"`
	}
	for i := 0; i < limit && sc.Scan(); i++ {
		l.Key = ""
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, i+1, err)
		}
		keys[l.Key] = true
	}
	return keys, sc.Err()
}
