package scenario

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
	"unicode"
)

// Annotated is a generated line with the generator's intent.
type Annotated struct {
	Line
	// Invalid is true when the generator meant the record to be
	// dead-lettered.
	Invalid bool
	// What names what the record exercises, for example "profile",
	// "activity/duplicate", "def/group/update" or "invalid/cycle".
	What string
}

// Generate returns a deterministic scenario: the same seed and Config give
// the same lines. Out-of-range Config fields are clamped (see Validate).
func Generate(seed int64, cfg Config) []Line {
	ann := GenerateAnnotated(seed, cfg)
	out := make([]Line, len(ann))
	for i, a := range ann {
		out[i] = a.Line
	}
	return out
}

// GenerateAnnotated is Generate with the generator's intent for each line.
func GenerateAnnotated(seed int64, cfg Config) []Annotated {
	cfg = cfg.normalized()
	g := &gen{r: rand.New(rand.NewPCG(uint64(seed), 0x5ce7a210)), cfg: cfg}
	g.run()
	return g.out
}

const (
	day  = int64(24 * time.Hour / time.Millisecond)
	hour = int64(time.Hour / time.Millisecond)
)

type gen struct {
	r     *rand.Rand
	cfg   Config
	out   []Annotated
	spots []*spotState
	evt   int // activity id sequence
	fresh int // sequence of names that never exist
	// last: the closing record of a scenario with a Span is being drawn.
	last bool
}

type spotState struct {
	id         string
	members    []string
	introduced map[string]bool            // member has had a profile with a status since its last erasure
	actIDs     map[string][]string        // member -> activity ids sent
	schemas    map[string]*schemaState    // "property:<id>" / "question:<id>" -> declared schema
	groups     map[string]*groupState     // existing groups
	smartIDs   []string                   // g1…gN
	blacklist  map[string]map[string]bool // group -> member
}

type schemaState struct {
	spec    *schemaSpec
	typ     string
	options []string
	label   string
}

func (s *schemaState) key() string { return s.spec.kind + ":" + s.spec.id }

type groupState struct {
	static bool
	refs   *refs
	// value is the definition last emitted.
	value map[string]any
}

// refs is what a rule references, mirroring SPEC §2.4 referential integrity.
type refs struct {
	groups  map[string]bool // group triggers
	statics map[string]bool // ids in profile.static_groups triggers
	schemas map[string]bool // "property:<id>" / "question:<id>"
	options map[string]bool // "<kind>:<id>\x00<option>"
}

func newRefs() *refs {
	return &refs{groups: map[string]bool{}, statics: map[string]bool{}, schemas: map[string]bool{}, options: map[string]bool{}}
}

// ---- randomness helpers (never iterate a map to choose) ----

func (g *gen) chance(p float64) bool { return g.r.Float64() < p }

func (g *gen) pick(ss []string) string { return ss[g.r.IntN(len(ss))] }

// subset returns between lo and hi distinct elements of ss, in random order.
func (g *gen) subset(ss []string, lo, hi int) []string {
	hi = min(hi, len(ss))
	lo = min(lo, hi)
	n := lo + g.r.IntN(hi-lo+1)
	perm := g.r.Perm(len(ss))
	out := make([]string, 0, n)
	for _, i := range perm[:n] {
		out = append(out, ss[i])
	}
	return out
}

// mixCase returns s with its case changed at random; "k" sometimes becomes
// U+212A KELVIN SIGN, which folds with k and K.
func (g *gen) mixCase(s string) string {
	switch g.r.IntN(5) {
	case 0:
		s = strings.ToUpper(s)
	case 1:
		s = strings.ToLower(s)
	case 2:
		var b strings.Builder
		for _, r := range s {
			if g.chance(0.5) {
				r = unicode.ToUpper(r)
			} else {
				r = unicode.ToLower(r)
			}
			b.WriteRune(r)
		}
		s = b.String()
	}
	if strings.ContainsAny(s, "kK") && g.chance(0.15) {
		s = strings.NewReplacer("k", "\u212A", "K", "\u212A").Replace(s)
	}
	return s
}

// substring returns a random non-empty prefix, suffix or middle of s
// (rune-aware).
func (g *gen) substring(s, where string) string {
	rs := []rune(s)
	if len(rs) <= 1 {
		return s
	}
	n := 1 + g.r.IntN(len(rs)-1)
	switch where {
	case "starts_with":
		return string(rs[:n])
	case "ends_with":
		return string(rs[len(rs)-n:])
	}
	i := g.r.IntN(len(rs) - n + 1)
	return string(rs[i : i+n])
}

// ---- time ----

var boundaryOffsets = []int64{0, hour, 12 * hour, 48 * hour, day, 7 * day, 30 * day, 90 * day}

// now is the instant timestamps are drawn around: Config.Now, moved
// towards Now+Span as the scenario goes.
func (g *gen) now() int64 {
	if g.cfg.Span <= 0 || g.cfg.Records <= 0 {
		return g.cfg.Now
	}
	return g.cfg.Now + g.cfg.Span*int64(len(g.out))/int64(g.cfg.Records)
}

// instant draws an instant around now: mostly past, some exactly on (or one
// millisecond off) the boundaries of the windows rules use, some future.
func (g *gen) instant() int64 {
	now := g.now()
	switch x := g.r.Float64(); {
	case x < 0.12:
		return now - boundaryOffsets[g.r.IntN(len(boundaryOffsets))] + int64(g.r.IntN(3)-1)
	case x < 0.22:
		return now + 1 + g.r.Int64N(10*day)
	default:
		return now - g.r.Int64N(120*day)
	}
}

// recordTS draws the ts of a member record (not an activity).
func (g *gen) recordTS() int64 {
	now := g.now()
	if g.last {
		return now + 100*day
	}
	switch x := g.r.Float64(); {
	case x < 0.05:
		return now + g.r.Int64N(2*day)
	case x < 0.15:
		return now - g.r.Int64N(hour)
	default:
		return now - g.r.Int64N(60*day)
	}
}

var zones = []*time.Location{time.UTC, time.FixedZone("", 2*3600), time.FixedZone("", -(5*3600 + 1800)), time.FixedZone("", 0)}

// tsValue renders an instant as an integer of epoch milliseconds or as an
// RFC 3339 string with some offset and fraction, all denoting the same
// millisecond.
func (g *gen) tsValue(ms int64) any {
	if g.chance(0.4) {
		return ms
	}
	return g.tsString(ms)
}

func (g *gen) tsString(ms int64) string {
	t := time.UnixMilli(ms).In(zones[g.r.IntN(len(zones))])
	switch {
	case ms%1000 == 0 && g.chance(0.5):
		return t.Format(time.RFC3339)
	case g.chance(0.2):
		// Sub-millisecond digits are truncated to the millisecond.
		return t.Add(time.Duration(g.r.IntN(1000)) * time.Microsecond).Format("2006-01-02T15:04:05.000000Z07:00")
	default:
		return t.Format("2006-01-02T15:04:05.000Z07:00")
	}
}

// ---- output ----

func marshal(v any) json.RawMessage {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("scenario: cannot marshal %T: %v", v, err)) // a bug in the generator
	}
	return bytes.TrimRight(b.Bytes(), "\n")
}

// emit appends a line; value nil is a JSON null value.
func (g *gen) emit(topic string, key *string, value any, invalid bool, what string) {
	var raw json.RawMessage
	if value != nil {
		raw = marshal(value)
	}
	g.out = append(g.out, Annotated{Line: Line{Topic: topic, Key: key, Value: raw}, Invalid: invalid, What: what})
}

func str(s string) *string { return &s }

func memberKey(sp *spotState, m string) *string { return str(sp.id + "/" + m) }

func (g *gen) done() bool { return len(g.out) >= g.cfg.Records }

// ---- scenario ----

func (g *gen) run() {
	for i := 0; i < g.cfg.Spots; i++ {
		sp := &spotState{
			id:         spotIDs[i],
			introduced: map[string]bool{},
			actIDs:     map[string][]string{},
			schemas:    map[string]*schemaState{},
			groups:     map[string]*groupState{},
			blacklist:  map[string]map[string]bool{},
		}
		for j := 0; j < g.cfg.MembersPerSpot; j++ {
			m := fmt.Sprintf("u%02d", j)
			if j == 2 {
				m = "zoë"
			}
			sp.members = append(sp.members, m)
		}
		for j := 1; j <= g.cfg.GroupsPerSpot; j++ {
			sp.smartIDs = append(sp.smartIDs, fmt.Sprintf("g%d", j))
		}
		g.spots = append(g.spots, sp)
	}

	// 1. Member records before any definition.
	pre := g.cfg.Records / 20
	if pre > 60 {
		pre = 60
	}
	for i := 0; i < pre; i++ {
		g.memberRecord(g.pickSpot())
	}

	// 2. Initial definitions: schemas, static groups, then smart groups in
	// dependency order.
	for _, sp := range g.spots {
		for i := range schemaCatalogue {
			if spec := &schemaCatalogue[i]; !spec.late {
				g.putSchema(sp, spec, spec.typ, spec.options, "def/schema/declare")
			}
		}
		for _, id := range staticGroupIDs[:2] {
			g.putStatic(sp, id, "def/static/create")
		}
		initial := (len(sp.smartIDs)*3 + 3) / 4
		for _, id := range sp.smartIDs[:initial] {
			g.putSmart(sp, id, "def/group/create")
		}
	}

	// 3. The mix.
	for !g.done() {
		sp := g.pickSpot()
		if g.chance(g.cfg.InvalidRate) {
			g.invalid(sp)
			continue
		}
		if g.chance(0.14) {
			g.definition(sp)
			continue
		}
		if g.chance(0.03) {
			g.erase(sp, g.pick(sp.members))
			continue
		}
		g.memberRecord(sp)
	}

	// 4. With a span, one last profile record well past every window moves
	// the event clock on: every pending timer must fire before the end.
	if g.cfg.Span > 0 {
		g.last = true
		sp := g.spots[0]
		g.profile(sp, sp.members[0])
	}
}

func (g *gen) pickSpot() *spotState { return g.spots[g.r.IntN(len(g.spots))] }

func (g *gen) memberRecord(sp *spotState) {
	m := g.pick(sp.members)
	switch x := g.r.Float64(); {
	case x < 0.38 || !sp.introduced[m] && x < 0.6:
		g.profile(sp, m)
	case x < 0.78:
		g.activity(sp, m)
	default:
		g.properties(sp, m)
	}
}

// ---- member records ----

func (g *gen) status() string {
	if g.chance(0.7) {
		return g.pick(eligibleStatuses)
	}
	return g.pick(statuses)
}

var profileFields = []string{"first_name", "last_name", "email", "title", "role", "language", "status",
	"tags", "invited_at", "registered_at", "last_activity_at", "utm", "static_groups", "shoe_size"}

func (g *gen) profilePatch(first bool) map[string]any {
	p := map[string]any{}
	if first || g.chance(0.2) {
		p["status"] = g.status()
	}
	for n := 1 + g.r.IntN(4); n > 0; n-- {
		f := g.pick(profileFields)
		if g.chance(0.1) && f != "shoe_size" {
			p[f] = nil // merge-patch null clears
			continue
		}
		switch f {
		case "first_name", "last_name", "email", "title", "role", "language":
			p[f] = g.mixCase(g.pick(stringPools[f]))
		case "status":
			p[f] = g.status()
		case "tags":
			var tags []string
			for _, t := range g.subset(tagPool, 0, 4) {
				tags = append(tags, g.mixCase(t))
			}
			if tags == nil {
				tags = []string{}
			}
			p[f] = tags
		case "invited_at", "registered_at", "last_activity_at":
			p[f] = g.tsValue(g.instant())
		case "utm":
			u := map[string]any{}
			for _, k := range g.subset(utmKeys, 1, 3) {
				if g.chance(0.15) {
					u[k] = nil
				} else {
					u[k] = g.mixCase(g.pick(stringPools["utm."+k]))
				}
			}
			if g.chance(0.05) {
				u["gclid"] = "abc" // unknown utm key: ignored
			}
			p[f] = u
		case "static_groups":
			sg := g.subset(staticGroupRefs, 0, 3)
			if sg == nil {
				sg = []string{}
			}
			p[f] = sg
		case "shoe_size":
			p[f] = 42 // unknown field: ignored and counted
		}
	}
	return p
}

func (g *gen) profile(sp *spotState, m string) {
	first := !sp.introduced[m]
	p := g.profilePatch(first)
	if s, ok := p["status"].(string); ok && s != "" {
		sp.introduced[m] = true
	}
	what := "profile"
	if first {
		what = "profile/first"
	}
	g.emit("profiles", memberKey(sp, m), map[string]any{
		"spot": sp.id, "member": m, "ts": g.tsValue(g.recordTS()), "profile": p,
	}, false, what)
}

func (g *gen) activityValue(sp *spotState, m string, typ string) (map[string]any, string) {
	v := map[string]any{"spot": sp.id, "member": m, "ts": g.tsValue(g.instant()), "type": typ}
	what := "activity"
	switch x := g.r.Float64(); {
	case x < 0.15 && len(sp.actIDs[m]) > 0:
		v["id"] = g.pick(sp.actIDs[m]) // a producer retry: ignored
		what = "activity/duplicate"
	case x < 0.85:
		g.evt++
		id := fmt.Sprintf("evt-%d", g.evt)
		sp.actIDs[m] = append(sp.actIDs[m], id)
		v["id"] = id
	default:
		what = "activity/no-id"
	}
	if pool := resources[typ]; pool != nil {
		res := map[string]any{"id": g.pick(pool)}
		if g.chance(0.9) {
			res["title"] = "Resource " + res["id"].(string)
		}
		v["resource"] = res
	}
	return v, what
}

func (g *gen) activity(sp *spotState, m string) {
	v, what := g.activityValue(sp, m, g.pick(activityTypes))
	g.emit("activities", memberKey(sp, m), v, false, what)
}

// fitting returns a value that fits the schema as declared now.
func (g *gen) fitting(typ string, options []string) any {
	switch typ {
	case "text":
		return g.mixCase(g.pick(textPool))
	case "number":
		if g.chance(0.3) {
			return float64(g.r.IntN(100)) + 0.5
		}
		return g.r.IntN(220) - 20
	case "date":
		return g.tsValue(g.instant())
	case "boolean":
		return g.chance(0.5)
	case "single_select":
		return g.pick(options)
	case "multi_select":
		ss := g.subset(options, 0, 3)
		if ss == nil {
			ss = []string{}
		}
		return ss
	}
	panic("scenario: unknown type " + typ)
}

// loose returns a value for an id that is not declared now: usually what
// its eventual declaration expects, sometimes anything.
func (g *gen) loose(spec *schemaSpec) any {
	if spec != nil && g.chance(0.6) {
		opts := append(append([]string(nil), spec.options...), spec.extra...)
		if len(opts) == 0 {
			opts = []string{"x"}
		}
		return g.fitting(spec.typ, opts)
	}
	switch g.r.IntN(7) {
	case 0:
		return "Free text"
	case 1:
		return 12
	case 2:
		return []any{"ai", "zz", 3}
	case 6:
		return []any{"ai", "go", nil} // not an array of strings: never fits
	case 3:
		return map[string]any{"nested": true}
	case 4:
		return g.tsString(g.instant())
	default:
		return false
	}
}

func specFor(kind, id string) *schemaSpec {
	for i := range schemaCatalogue {
		if s := &schemaCatalogue[i]; s.kind == kind && s.id == id {
			return s
		}
	}
	return nil
}

func (g *gen) valuesOf(sp *spotState, kind string) map[string]any {
	var ids []string
	for _, s := range schemaCatalogue {
		if s.kind == kind {
			ids = append(ids, s.id)
		}
	}
	ids = append(ids, undeclaredIDs...)
	out := map[string]any{}
	for n := g.r.IntN(4); n > 0; n-- {
		id := g.pick(ids)
		if g.chance(0.15) {
			out[id] = nil
			continue
		}
		if st := sp.schemas[kind+":"+id]; st != nil {
			out[id] = g.fitting(st.typ, st.options)
		} else {
			out[id] = g.loose(specFor(kind, id))
		}
	}
	return out
}

func (g *gen) properties(sp *spotState, m string) {
	custom, form := g.valuesOf(sp, "property"), g.valuesOf(sp, "question")
	if len(custom) == 0 && len(form) == 0 {
		custom["x_color"] = g.pick([]string{"red", "Blue"})
	}
	v := map[string]any{"spot": sp.id, "member": m, "ts": g.tsValue(g.recordTS())}
	for _, part := range []struct {
		name string
		vals map[string]any
	}{{"custom", custom}, {"form", form}} {
		name, vals := part.name, part.vals
		switch {
		case len(vals) > 0:
			v[name] = vals
		case g.chance(0.5):
			v[name] = nil
		}
	}
	g.emit("properties", memberKey(sp, m), v, false, "properties")
}

func (g *gen) erase(sp *spotState, m string) {
	if g.chance(0.5) {
		g.emit("profiles", memberKey(sp, m), nil, false, "erase/tombstone")
	} else {
		g.emit("profiles", memberKey(sp, m), map[string]any{
			"spot": sp.id, "member": m, "ts": g.tsValue(g.recordTS()), "erase": true,
		}, false, "erase/flag")
	}
	delete(sp.introduced, m)
	delete(sp.actIDs, m)
	for _, byMember := range sp.blacklist {
		delete(byMember, m)
	}
}
