package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/internal/demo"
	"github.com/smartgroups/smartgroups/internal/reference"
)

// workloadConfig shapes a workload.
type workloadConfig struct {
	Seed           uint64
	MembersPerSpot int
	// Step is how far the synthetic clock moves per live record.
	Step time.Duration
	// InvalidEvery puts one invalid record after every InvalidEvery live
	// records.
	InvalidEvery int
	// InvalidDefinitions adds an invalid definition per spot.
	InvalidDefinitions bool
}

func defaultWorkloadConfig(seed uint64) workloadConfig {
	return workloadConfig{Seed: seed, MembersPerSpot: 300, Step: 5 * time.Minute, InvalidEvery: 150, InvalidDefinitions: true}
}

// workload generates the records of a test in production order and keeps
// them for the reference. Its final memberships do not depend on the order
// of records across topics and partitions (see the package doc and
// TestWorkloadOrderIndependent).
type workload struct {
	cfg     workloadConfig
	spots   []string
	gen     *demo.Generator
	rnd     *rand.Rand
	clock   time.Time
	defs    []wrec
	members []wrec // every member record generated so far, in order
	invalid int    // invalid member records among them
	nextID  int

	// byPartition lists, per spot, member ids by input partition.
	byPartition map[string][numPartitions][]string
	// blacklisted are the "<spot>/<group>/<member>" blacklist entries.
	blacklisted []string
}

var workloadStart = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func newWorkload(cfg workloadConfig) *workload {
	spots := []string{"acme", "globex"}
	w := &workload{
		cfg:         cfg,
		spots:       spots,
		gen:         demo.New(demo.Config{Spots: spots, Members: cfg.MembersPerSpot, Seed: cfg.Seed}),
		rnd:         rand.New(rand.NewPCG(cfg.Seed, 0x5eed)),
		clock:       workloadStart,
		byPartition: map[string][numPartitions][]string{},
	}
	for _, s := range spots {
		var parts [numPartitions][]string
		for i := 0; i < cfg.MembersPerSpot; i++ {
			m := fmt.Sprintf("m%05d", i) // the demo generator's ids
			p := partitionOf(s + "/" + m)
			parts[p] = append(parts[p], m)
		}
		w.byPartition[s] = parts
	}
	w.buildDefinitions()
	return w
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// buildDefinitions: the demo community's schemas and groups (every trigger
// kind, time windows, a nested group trigger), two more levels of group
// triggers, and blacklist entries, one of them on a group that others
// reference.
func (w *workload) buildDefinitions() {
	for _, r := range w.gen.Definitions() {
		w.defs = append(w.defs, wrec{Kind: engine.KindDefinitions, Key: r.Key, Value: r.Value})
	}
	for _, s := range w.spots {
		group := func(id string, rule any) {
			w.defs = append(w.defs, wrec{Kind: engine.KindDefinitions, Key: s + "/group/" + id,
				Value: mustJSON(map[string]any{"kind": "group", "spot": s, "id": id, "type": "smart", "name": id, "rule": rule})})
		}
		// Paying and not dormant: a group trigger on a time-driven group.
		group("active-payers", map[string]any{"all": []any{
			map[string]any{"group": "paying-teams"},
			map[string]any{"not": map[string]any{"group": "dormant"}},
		}})
		// Three levels: vip-chain -> ambassador-vips -> engaged-vips, and
		// vip-chain -> active-payers -> paying-teams, dormant.
		group("vip-chain", map[string]any{"any": []any{
			map[string]any{"group": "ambassador-vips"},
			map[string]any{"all": []any{
				map[string]any{"group": "active-payers"},
				map[string]any{"field": "profile.tags", "op": "has_any", "value": []string{"vip", "mentor"}},
			}},
		}})
		blacklist := func(group string, members ...string) {
			for _, m := range members {
				w.defs = append(w.defs, wrec{Kind: engine.KindDefinitions, Key: s + "/blacklist/" + group + "/" + m,
					Value: mustJSON(map[string]any{"kind": "blacklist", "spot": s, "group": group, "member": m})})
				w.blacklisted = append(w.blacklisted, s+"/"+group+"/"+m)
			}
		}
		// The most active members (the generator's power law favors low
		// indexes) in activity-driven groups, and payers in a group that
		// other groups reference.
		blacklist("recent-attendees", "m00000", "m00001", "m00002")
		blacklist("engaged-vips", "m00000", "m00003")
		blacklist("paying-teams", "m00004", "m00005", "m00006", "m00007", "m00008", "m00009", "m00010", "m00011")
		if !w.cfg.InvalidDefinitions {
			continue
		}
		// An invalid definition (a rule on an unknown field): dead-lettered,
		// by the one instance that owns member partition 0.
		w.defs = append(w.defs, wrec{Kind: engine.KindDefinitions, Key: s + "/group/broken", Invalid: true,
			Value: mustJSON(map[string]any{"kind": "group", "spot": s, "id": "broken", "type": "smart", "name": "broken",
				"rule": map[string]any{"field": "profile.shoe_size", "op": "eq", "value": "42"}})})
	}
}

// deadLetters is how many dead letters the workload so far must produce:
// one per invalid definition and member record.
func (w *workload) deadLetters() int { return w.invalid + w.countInvalid(w.defs) }

func (w *workload) add(recs ...wrec) []wrec {
	for _, r := range recs {
		if r.Invalid {
			w.invalid++
		}
	}
	w.members = append(w.members, recs...)
	return recs
}

func (w *workload) ts() string { return w.clock.UTC().Format(time.RFC3339Nano) }

func (w *workload) randomMember() (spot, member string) {
	spot = w.spots[w.rnd.IntN(len(w.spots))]
	return spot, fmt.Sprintf("m%05d", w.rnd.IntN(w.cfg.MembersPerSpot))
}

// invalidRecord returns a record the engine must dead-letter whatever the
// order of the input: kind 0 bad JSON, 1 key mismatch, 2 unknown activity
// type, 3 a property value that does not fit its declared type.
func (w *workload) invalidRecord(kind int, spot, member string) wrec {
	key := spot + "/" + member
	switch kind {
	case 0:
		return wrec{Kind: engine.KindProfiles, Key: key, Invalid: true,
			Value: []byte(`{"spot":"` + spot + `","member":"` + member + `","ts":"` + w.ts() + `","profile":{"first_name":`)}
	case 1:
		other := "x" + member
		return wrec{Kind: engine.KindProperties, Key: key, Invalid: true,
			Value: mustJSON(map[string]any{"spot": spot, "member": other, "ts": w.ts(), "custom": map[string]any{"plan": "pro"}})}
	case 2:
		w.nextID++
		return wrec{Kind: engine.KindActivities, Key: key, Invalid: true,
			Value: mustJSON(map[string]any{"spot": spot, "member": member, "ts": w.ts(), "id": fmt.Sprintf("bad-%d", w.nextID),
				"type": "teleported", "resource": map[string]string{"id": "x", "title": "x"}})}
	default:
		return wrec{Kind: engine.KindProperties, Key: key, Invalid: true,
			Value: mustJSON(map[string]any{"spot": spot, "member": member, "ts": w.ts(), "custom": map[string]any{"seats": "a dozen"}})}
	}
}

// initial is one profile and one properties record per member, all at the
// start of the synthetic clock.
func (w *workload) initial() []wrec {
	var out []wrec
	for _, r := range w.gen.Members(w.clock) {
		out = append(out, wrec{Kind: r.Kind, Key: r.Key, Value: r.Value})
	}
	return w.add(out...)
}

// live is n records of the demo's live stream (mostly activities, some
// profile and property updates), the clock advancing by Step per record,
// with an invalid record after every InvalidEvery.
func (w *workload) live(n int) []wrec {
	var out []wrec
	for i := 0; i < n; i++ {
		w.clock = w.clock.Add(w.cfg.Step)
		r := w.gen.Next(w.clock)
		out = append(out, wrec{Kind: r.Kind, Key: r.Key, Value: r.Value})
		if w.cfg.InvalidEvery > 0 && (i+1)%w.cfg.InvalidEvery == 0 {
			s, m := w.randomMember()
			out = append(out, w.invalidRecord(w.rnd.IntN(4), s, m))
		}
	}
	return w.add(out...)
}

// jump moves the clock by d and returns, for every spot and partition, an
// activity of a few members at the new instant, so that every instance,
// whatever partitions it owns, ends with the same event clock, and time
// windows slide for every partition.
func (w *workload) jump(d time.Duration, perPartition int) []wrec {
	w.clock = w.clock.Add(d)
	var out []wrec
	for _, s := range w.spots {
		parts := w.byPartition[s]
		for p := range parts {
			for i := 0; i < perPartition && i < len(parts[p]); i++ {
				m := parts[p][i]
				w.nextID++
				out = append(out, wrec{Kind: engine.KindActivities, Key: s + "/" + m,
					Value: mustJSON(map[string]any{"spot": s, "member": m, "ts": w.ts(), "id": fmt.Sprintf("jump-%d", w.nextID),
						"type": "attended_live", "resource": map[string]string{"id": "live-weekly-ama", "title": "Weekly AMA"}})})
			}
		}
	}
	return w.add(out...)
}

// sentinels is one invalid record per member topic and partition: once all
// are dead-lettered, every input partition was processed to its end.
func (w *workload) sentinels() []wrec {
	var out []wrec
	kinds := map[engine.Kind]int{engine.KindProfiles: 0, engine.KindActivities: 2, engine.KindProperties: 3}
	for _, k := range []engine.Kind{engine.KindProfiles, engine.KindActivities, engine.KindProperties} {
		for p := 0; p < numPartitions; p++ {
			s := w.spots[p%len(w.spots)]
			parts := w.byPartition[s]
			m := parts[p][w.rnd.IntN(len(parts[p]))]
			r := w.invalidRecord(kinds[k], s, m)
			if r.Kind != k {
				panic("sentinel of the wrong kind")
			}
			out = append(out, r)
		}
	}
	return w.add(out...)
}

// batch is a typical input: n live records, a jump of the clock and the
// sentinels.
func (w *workload) batch(n int) []wrec {
	var out []wrec
	out = append(out, w.live(n)...)
	out = append(out, w.jump(2*time.Hour, 2)...)
	out = append(out, w.sentinels()...)
	return out
}

func engineRecord(r wrec, offset int64) engine.Record {
	return engine.Record{Kind: r.Kind, Key: []byte(r.Key), Value: r.Value, Offset: offset}
}

// reference evaluates the workload so far with the naive reference model:
// definitions first, then the member records in order.
func (w *workload) reference(t *testing.T) map[string]bool {
	t.Helper()
	return w.referenceOf(t, w.defs, w.members)
}

func (w *workload) referenceOf(t *testing.T, defs, members []wrec) map[string]bool {
	t.Helper()
	return w.modelOf(t, defs, members).Memberships()
}

// referenceAccess is the access to linked resources at the end of the
// workload so far, by the reference model: "<spot>/<resource>/<member>".
func (w *workload) referenceAccess(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for k := range w.modelOf(t, w.defs, w.members).Access() {
		out[k] = true
	}
	return out
}

// modelOf is the reference model after defs, then members.
func (w *workload) modelOf(t *testing.T, defs, members []wrec) *reference.Model {
	t.Helper()
	m := reference.New(0, true)
	for i, r := range defs {
		m.Apply(engineRecord(r, int64(i)))
	}
	if rej := m.Rejections(); len(rej) != w.countInvalid(defs) {
		t.Fatalf("the reference rejects %d workload definitions, want %d: %+v", len(rej), w.countInvalid(defs), rej)
	}
	for i, r := range members {
		m.Apply(engineRecord(r, int64(len(defs)+i)))
	}
	if got := len(m.Rejections()) - w.countInvalid(defs); got != w.countInvalid(members) {
		t.Fatalf("the reference dead-letters %d member records, the workload has %d invalid ones: %+v",
			got, w.countInvalid(members), m.Rejections())
	}
	if want := w.clock.UnixMilli(); m.Now() != want && len(members) == len(w.members) {
		t.Fatalf("reference clock %d, want the last ts %d", m.Now(), want)
	}
	return m
}

func (w *workload) countInvalid(recs []wrec) int {
	n := 0
	for _, r := range recs {
		if r.Invalid {
			n++
		}
	}
	return n
}

// describe summarizes memberships per group.
func describeMemberships(ms map[string]bool) string {
	per := map[string]int{}
	for k := range ms {
		per[k[:strings.LastIndexByte(k, '/')]]++
	}
	keys := make([]string, 0, len(per))
	for k := range per {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%d ", k, per[k])
	}
	return b.String()
}

// TestWorkloadOrderIndependent checks the premise of every end-to-end test:
// the workload's final memberships do not depend on the interleaving of
// topics and partitions, only on the order within each partition. It feeds
// the reference the same records in production order and in several
// random interleavings that keep every topic partition's order, and checks
// that the blacklist, the time windows and the nested group triggers are
// not vacuous.
func TestWorkloadOrderIndependent(t *testing.T) {
	t.Parallel()
	w := newWorkload(defaultWorkloadConfig(7))
	w.initial()
	w.batch(1500)
	w.batch(1500)
	want := w.reference(t)
	t.Logf("%d member records (%d invalid), %d memberships: %s", len(w.members), w.invalid, len(want), describeMemberships(want))

	// Interleavings: split by (topic, partition) and merge randomly.
	rnd := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 3; round++ {
		queues := map[string][]wrec{}
		var names []string
		for _, r := range w.members {
			q := fmt.Sprintf("%s/%d", r.Kind, partitionOf(r.Key))
			if _, ok := queues[q]; !ok {
				names = append(names, q)
			}
			queues[q] = append(queues[q], r)
		}
		var shuffled []wrec
		for len(names) > 0 {
			i := rnd.IntN(len(names))
			q := names[i]
			shuffled = append(shuffled, queues[q][0])
			queues[q] = queues[q][1:]
			if len(queues[q]) == 0 {
				names = append(names[:i], names[i+1:]...)
			}
		}
		got := w.referenceOf(t, w.defs, shuffled)
		if d := diffSets(got, want, nil); d != "" {
			t.Fatalf("interleaving %d changes the final memberships:\n%s", round, d)
		}
	}

	// Not vacuous: some groups of each kind have members, and the blacklist
	// keeps out members who match.
	for _, g := range []string{"acme/live-last-hour/", "acme/recent-attendees/", "acme/dormant/", "acme/paying-teams/",
		"acme/active-payers/", "acme/vip-chain/", "globex/engaged-vips/", "globex/ai-builders/"} {
		n := 0
		for k := range want {
			if strings.HasPrefix(k, g) {
				n++
			}
		}
		if n == 0 {
			t.Errorf("group %s has no member in the expected memberships: the workload does not exercise it", g)
		}
	}
	var defsNoBL []wrec
	for _, d := range w.defs {
		if !strings.Contains(d.Key, "/blacklist/") && !d.Invalid {
			defsNoBL = append(defsNoBL, d)
		}
	}
	withoutBL := w.referenceOf(t, defsNoBL, w.members)
	kept := 0
	for _, k := range w.blacklisted {
		if withoutBL[k] && !want[k] {
			kept++
		}
	}
	if kept == 0 {
		t.Errorf("no blacklist entry keeps a matching member out: the blacklist is not exercised")
	}
	t.Logf("blacklist keeps %d matching memberships out", kept)
}
