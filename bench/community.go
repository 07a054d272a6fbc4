package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/smartgroups/smartgroups/engine"
)

// CommunityConfig shapes a generated community.
type CommunityConfig struct {
	// Members is the number of members over all spots. Default 20,000.
	Members int
	// Groups is the number of smart groups over all spots. Default 200.
	Groups int
	// Events is the number of live records (activities, profile and
	// property updates) after the initial load. Default 200,000.
	Events int
	// Spots is the number of spots (tenants); members and groups are split
	// evenly between them. Default 1, so that every record of a member
	// concerns all the groups (the case the naive baseline is about).
	Spots int
	// TimeShare is the share of smart groups whose rule has a sliding time
	// window (within_last, more_than_ago). Zero means the default, 0.2;
	// a negative value means none.
	TimeShare float64
	// Seed of the random source. Default 1.
	Seed uint64
	// End is the ts of the last live record; the live stream spans
	// [End-Span, End]. Default: now, truncated to the second.
	End time.Time
	// Span is the time the live stream covers. Default 30 days.
	Span time.Duration
	// History is the time before the live stream whose activity is part of
	// the initial load, so that windows and counts start in a steady
	// state. Default 7 days; negative means none.
	History time.Duration
}

// DefaultCommunityConfig returns the defaults documented on CommunityConfig.
func DefaultCommunityConfig() CommunityConfig {
	return CommunityConfig{Members: 20_000, Groups: 200, Events: 200_000, Spots: 1, TimeShare: 0.2, Seed: 1,
		Span: 30 * 24 * time.Hour, History: 7 * 24 * time.Hour}
}

func (c CommunityConfig) withDefaults() CommunityConfig {
	d := DefaultCommunityConfig()
	if c.Members <= 0 {
		c.Members = d.Members
	}
	if c.Groups < 0 {
		c.Groups = d.Groups
	}
	if c.Events < 0 {
		c.Events = d.Events
	}
	if c.Spots <= 0 {
		c.Spots = d.Spots
	}
	if c.Spots > c.Members {
		c.Spots = c.Members
	}
	switch {
	case c.TimeShare == 0 || c.TimeShare > 1 || math.IsNaN(c.TimeShare):
		c.TimeShare = d.TimeShare
	case c.TimeShare < 0:
		c.TimeShare = 0
	}
	if c.Seed == 0 {
		c.Seed = d.Seed
	}
	if c.End.IsZero() {
		c.End = time.Now().Truncate(time.Second)
	}
	if c.Span <= 0 {
		c.Span = d.Span
	}
	switch {
	case c.History == 0:
		c.History = d.History
	case c.History < 0:
		c.History = 0
	}
	return c
}

// Validate reports unusable parameters.
func (c CommunityConfig) Validate() error {
	var errs []error
	if c.Members < 1 {
		errs = append(errs, errors.New("bench: members must be at least 1"))
	}
	if c.Groups < 0 {
		errs = append(errs, errors.New("bench: groups must not be negative"))
	}
	if c.Events < 0 {
		errs = append(errs, errors.New("bench: events must not be negative"))
	}
	if c.Spots < 1 {
		errs = append(errs, errors.New("bench: spots must be at least 1"))
	}
	return errors.Join(errs...)
}

// Record is one generated input record.
type Record struct {
	Kind  engine.Kind
	Key   string
	Value []byte
}

// EngineRecord converts to an engine record (file-mode position).
func (r Record) EngineRecord(offset int64) engine.Record {
	return engine.Record{Kind: r.Kind, Topic: string(r.Kind), Offset: offset, Key: []byte(r.Key), Value: r.Value}
}

// ---- vocabulary ----

var (
	firstNames = []string{"Ada", "Grace", "Linus", "Margaret", "Alan", "Barbara", "Ken", "Radia", "Dennis", "Frances",
		"Élodie", "Jürgen", "Søren", "Aiko", "Mateo", "Priya", "Chen", "Fatima", "Olu", "Ingrid"}
	lastNames = []string{"Lovelace", "Hopper", "Torvalds", "Hamilton", "Turing", "Liskov", "Thompson", "Perlman",
		"Ritchie", "Allen", "Dubois", "Müller", "Nielsen", "Tanaka", "García", "Okafor", "Kowalski", "Silva"}
	titles    = []string{"Engineer", "Designer", "Founder", "Product manager", "Data scientist", "Marketing lead", "Student", "CTO"}
	statuses  = weighted{{"accepted", 70}, {"invited", 12}, {"pending", 8}, {"deactivated", 5}, {"unsubscribed", 3}, {"declined", 1}, {"rejected", 1}}
	roles     = weighted{{"member", 90}, {"moderator", 7}, {"admin", 3}}
	languages = weighted{{"en", 45}, {"fr", 15}, {"de", 10}, {"es", 10}, {"en-GB", 8}, {"pt-BR", 5}, {"ja", 4}, {"it", 3}}
	sources   = weighted{{"google", 30}, {"newsletter", 20}, {"linkedin", 15}, {"partner", 10}, {"event", 10}, {"", 15}}
	mediums   = weighted{{"cpc", 30}, {"email", 30}, {"social", 25}, {"referral", 15}}
	plans     = weighted{{"free", 60}, {"starter", 20}, {"pro", 15}, {"enterprise", 5}}
	sizes     = weighted{{"1-10", 40}, {"11-50", 30}, {"51-200", 18}, {"201-1000", 8}, {"1000+", 4}}
	goals     = []string{"Build AI agents", "Learn Go", "Meet peers", "Hiring", "Find a job", "Grow my startup", "Teach", "Just curious"}
	functions = []string{"engineering", "design", "marketing", "sales", "support", "management", "research", "other"}
	interests = []string{"ai", "go", "data", "design", "cloud", "security", "mobile", "web", "devops", "ml", "product", "career"}
	// Activity types with their share of the live stream's activities.
	activityMix = weighted{{"opened_document", 20}, {"opened_link", 15}, {"attended_live", 10}, {"registered_to_live", 10},
		{"watched_replay", 8}, {"answered_topic", 10}, {"created_topic", 4}, {"started_course", 6}, {"completed_course", 3},
		{"started_learning_path", 3}, {"completed_learning_path", 1}, {"joined_spot", 4}, {"requested_to_join_spot", 3},
		{"left_spot", 3}}
)

const (
	numTags       = 200
	numDomains    = 500
	numStatic     = 20
	numCampaigns  = 50
	numIndustries = 20
)

// resource pools per activity family.
var resourcePools = map[string]struct {
	prefix string
	n      int
}{
	"registered_to_live": {"live", 200}, "attended_live": {"live", 200}, "watched_replay": {"live", 200},
	"started_course": {"course", 100}, "completed_course": {"course", 100},
	"started_learning_path": {"path", 30}, "completed_learning_path": {"path", 30},
	"opened_document": {"doc", 500}, "opened_link": {"link", 300},
	"created_topic": {"topic", 1000}, "answered_topic": {"topic", 1000},
}

type weighted []struct {
	v string
	w int
}

func (ws weighted) pick(r *rand.Rand) string { return ws[ws.index(r)].v }

// index draws the index of a value with probability ∝ its weight.
func (ws weighted) index(r *rand.Rand) int {
	total := 0
	for _, x := range ws {
		total += x.w
	}
	n := r.IntN(total)
	for i, x := range ws {
		if n < x.w {
			return i
		}
		n -= x.w
	}
	return len(ws) - 1
}

// zipf returns an index in [0, n) with P(i) ∝ 1/(i+1)^s, via a cumulative
// table.
type zipf struct{ cum []float64 }

func newZipf(n int, s float64) *zipf {
	z := &zipf{cum: make([]float64, n)}
	total := 0.0
	for i := range z.cum {
		total += 1 / math.Pow(float64(i+1), s)
		z.cum[i] = total
	}
	for i := range z.cum {
		z.cum[i] /= total
	}
	return z
}

func (z *zipf) draw(r *rand.Rand) int {
	return min(sort.SearchFloat64s(z.cum, r.Float64()), len(z.cum)-1)
}

func tagName(i int) string {
	named := []string{"vip", "beta", "speaker", "mentor", "newcomer", "partner", "alumni", "ambassador"}
	if i < len(named) {
		return named[i]
	}
	return fmt.Sprintf("tag-%03d", i)
}

func resourceID(typ string, i int) string {
	p := resourcePools[typ]
	return fmt.Sprintf("%s-%03d", p.prefix, i)
}

// ---- generator ----

// Community generates a deterministic community: definitions, an initial
// load (one profile and one properties record per member), and a live
// stream in which members act with power-law frequencies.
type Community struct {
	cfg        CommunityConfig
	r          *rand.Rand
	spots      []string
	perSpot    []int       // members per spot
	groupsOf   []int       // smart groups per spot
	activity   [][]float64 // per spot: cumulative activity weight per member
	tagZ       *zipf
	domainZ    *zipf
	campaignZ  *zipf
	resZ       map[int]*zipf // per pool size
	interestZ  *zipf
	seq        int
	lastTS     [][]int64        // per spot, per member: last ts given by Live (0: none)
	lastAct    [][]pastActivity // per spot, per member: the last activity given (seq 0: none)
	retries    int
	historied  int
	streamed   int
	streamStep float64
}

// NewCommunity returns a generator.
func NewCommunity(cfg CommunityConfig) *Community {
	cfg = cfg.withDefaults()
	c := &Community{cfg: cfg, r: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		tagZ: newZipf(numTags, 1.1), domainZ: newZipf(numDomains, 1.0), campaignZ: newZipf(numCampaigns, 1.0),
		interestZ: newZipf(len(interests), 0.8), resZ: map[int]*zipf{}}
	for _, p := range resourcePools {
		if c.resZ[p.n] == nil {
			c.resZ[p.n] = newZipf(p.n, 1.0)
		}
	}
	for i := 0; i < cfg.Spots; i++ {
		c.spots = append(c.spots, fmt.Sprintf("spot%02d", i))
		c.perSpot = append(c.perSpot, cfg.Members/cfg.Spots+boolInt(i < cfg.Members%cfg.Spots))
		c.groupsOf = append(c.groupsOf, cfg.Groups/cfg.Spots+boolInt(i < cfg.Groups%cfg.Spots))
	}
	// Activity per member: 30% dormant members (weight 0.02), the others
	// Pareto(α=1.5) capped at 1000× the minimum: a few power users, a long
	// tail of occasional visitors.
	for s := range c.spots {
		cum := make([]float64, c.perSpot[s])
		total := 0.0
		for i := range cum {
			w := 0.02
			if c.r.Float64() >= 0.3 {
				w = math.Min(math.Pow(1-c.r.Float64(), -1/1.5), 1000)
			}
			total += w
			cum[i] = total
		}
		for i := range cum {
			cum[i] /= total
		}
		c.activity = append(c.activity, cum)
		c.lastTS = append(c.lastTS, make([]int64, c.perSpot[s]))
		c.lastAct = append(c.lastAct, make([]pastActivity, c.perSpot[s]))
	}
	if cfg.Events > 0 {
		c.streamStep = float64(cfg.Span.Milliseconds()) / float64(cfg.Events)
	}
	return c
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Config returns the effective configuration.
func (c *Community) Config() CommunityConfig { return c.cfg }

// Spots returns the spot ids.
func (c *Community) Spots() []string { return c.spots }

// SpotMembers returns the number of members of spot i.
func (c *Community) SpotMembers(i int) int { return c.perSpot[i] }

// Start is the start of the live stream, the end of the initial load.
func (c *Community) Start() time.Time { return c.cfg.End.Add(-c.cfg.Span) }

// LoadStart is the ts of the initial load's profiles and properties; its
// history of activity follows, up to Start.
func (c *Community) LoadStart() time.Time { return c.Start().Add(-c.cfg.History) }

// Retries returns how many of the records given so far are producer
// retries: an activity record sent again, byte for byte.
func (c *Community) Retries() int { return c.retries }

// pastActivity is what a retry of a member's last activity needs.
type pastActivity struct {
	seq    int32 // the id's number; 0: no activity yet
	ts     int64
	typ    uint8 // index in activityMix
	res    int16 // resource index, -1: none
	millis bool  // ts written as epoch milliseconds
}

// activityRate is member i of spot s's expected activities per
// millisecond in the live stream.
func (c *Community) activityRate(s, i int) float64 {
	cum := c.activity[s]
	p := cum[i]
	if i > 0 {
		p -= cum[i-1]
	}
	return 0.85 * float64(c.cfg.Events) * p / float64(c.cfg.Span.Milliseconds())
}

func memberID(i int) string { return fmt.Sprintf("m%07d", i) }

func ms(t time.Time) int64 { return t.UnixMilli() }

func rfc(t int64) string { return time.UnixMilli(t).UTC().Format(time.RFC3339Nano) }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("bench: marshal: %v", err)) // values are built here from plain types
	}
	return b
}

// Definitions returns the schemas, static groups and smart groups of every
// spot, in an order that makes them valid.
func (c *Community) Definitions() []Record {
	var out []Record
	for s, spot := range c.spots {
		def := func(kind, id string, v map[string]any) {
			v["kind"], v["spot"], v["id"] = kind, spot, id
			out = append(out, Record{Kind: engine.KindDefinitions, Key: spot + "/" + kind + "/" + id, Value: mustJSON(v)})
		}
		opts := func(ids ...string) []map[string]string {
			o := make([]map[string]string, len(ids))
			for i, id := range ids {
				o[i] = map[string]string{"id": id, "label": id}
			}
			return o
		}
		var industries []string
		for i := 0; i < numIndustries; i++ {
			industries = append(industries, fmt.Sprintf("ind-%02d", i))
		}
		def("property", "plan", map[string]any{"label": "Plan", "type": "single_select", "options": opts("free", "starter", "pro", "enterprise")})
		def("property", "seats", map[string]any{"label": "Seats", "type": "number"})
		def("property", "renewal", map[string]any{"label": "Renewal date", "type": "date"})
		def("property", "beta_opt_in", map[string]any{"label": "Beta opt-in", "type": "boolean"})
		def("property", "interests", map[string]any{"label": "Interests", "type": "multi_select", "options": opts(interests...)})
		def("property", "industry", map[string]any{"label": "Industry", "type": "single_select", "options": opts(industries...)})
		def("property", "nps", map[string]any{"label": "NPS", "type": "number"})
		def("property", "company", map[string]any{"label": "Company", "type": "text"})
		def("question", "company_size", map[string]any{"label": "Company size", "type": "single_select", "options": opts("1-10", "11-50", "51-200", "201-1000", "1000+")})
		def("question", "goal", map[string]any{"label": "What brings you here?", "type": "text"})
		def("question", "function", map[string]any{"label": "Job function", "type": "single_select", "options": opts(functions...)})
		for i := 0; i < numStatic; i++ {
			def("group", fmt.Sprintf("static-%02d", i), map[string]any{"type": "static", "name": fmt.Sprintf("Static %d", i)})
		}
		for i := 0; i < c.groupsOf[s]; i++ {
			id, rule := c.groupRule(s, i)
			def("group", id, map[string]any{"type": "smart", "name": "Group " + id, "rule": rule})
		}
	}
	return out
}

// timeTemplates and plainTemplates are the rule shapes groups cycle
// through; time templates get TimeShare of the groups.
const (
	timeTemplates  = 6
	plainTemplates = 18
)

// templateNames name the rule templates, time templates first, for the
// per-template figures of the report.
var templateNames = [timeTemplates + plainTemplates]string{
	"time: attended a live within_last N days", "time: last_activity_at more_than_ago N days, status",
	"time: registered within_last N days, utm source", "time: opened ≥ N documents within_last N hours",
	"time: answered ≥ N topics within_last N days, tag", "time: renewal more_than_ago N days, plan",
	"tags has_any", "tags has_all", "status, role, language", "email ends_with domain", "plan and seats",
	"interests, not company size", "attended given lives", "completed ≥ N courses", "static group and documents",
	"another smart group or a tag", "started a learning path, completed none, tag", "goal contains, language",
	"beta opt-in and industry", "nps between, industry", "utm campaign and title", "function or company",
	"registered after, not in a static group", "created and answered topics, language",
}

// isTimeGroup reports whether smart group i of a spot has a sliding time
// window: when the running share crosses TimeShare.
func (c *Community) isTimeGroup(i int) bool {
	return math.Floor(float64(i+1)*c.cfg.TimeShare) > math.Floor(float64(i)*c.cfg.TimeShare)
}

// Template returns the name of the rule template of smart group i.
func (c *Community) Template(i int) string {
	if c.isTimeGroup(i) {
		return templateNames[i%timeTemplates]
	}
	return templateNames[timeTemplates+i%plainTemplates]
}

// GroupTemplate returns the template name of the smart group with the given
// id (as Definitions names them), or "" for another group.
func (c *Community) GroupTemplate(id string) string {
	var i int
	if _, err := fmt.Sscanf(id, "g%04d", &i); err != nil || i < 0 || i >= slices.Max(c.groupsOf) {
		return ""
	}
	return c.Template(i)
}

// groupRule returns the id and rule of smart group i of spot s. Groups are
// spread over every trigger kind; a share of them (TimeShare) have a
// sliding time window; group triggers only name groups defined earlier.
// The operands of each group are drawn from a source of its own, so
// groups of one template differ as real communities' groups do (a few
// coincide where a template has few possible operands).
func (c *Community) groupRule(s, i int) (string, any) {
	id := fmt.Sprintf("g%04d", i)
	g := rand.New(rand.NewPCG(c.cfg.Seed^uint64(s)<<32^uint64(i), 0x5851f42d4c957f2d))
	field := func(f, op string, v any) map[string]any {
		m := map[string]any{"field": f, "op": op}
		if v != nil {
			m["value"] = v
		}
		return m
	}
	act := func(typ string, res []string, when any, count map[string]int) map[string]any {
		m := map[string]any{"activity": typ}
		if res != nil {
			m["resources"] = res
		}
		if when != nil {
			m["when"] = when
		}
		if count != nil {
			m["count"] = count
		}
		return m
	}
	all := func(n ...any) map[string]any { return map[string]any{"all": n} }
	anyOf := func(n ...any) map[string]any { return map[string]any{"any": n} }
	not := func(n any) map[string]any { return map[string]any{"not": n} }
	days := func(n int) map[string]int { return map[string]int{"days": n} }
	between := func(lo, hi int) int { return lo + g.IntN(hi-lo+1) }
	// subset draws 1..n distinct values of ws, in ws's order.
	subset := func(ws weighted, n int) []string {
		k := between(1, n)
		idx := g.Perm(len(ws))[:k]
		slices.Sort(idx)
		out := make([]string, k)
		for j, x := range idx {
			out[j] = ws[x].v
		}
		return out
	}
	tag := func() string { return tagName(c.tagZ.draw(g)) }
	anyTag := func() string { return tagName(g.IntN(numTags)) }
	res := func(typ string) string { return resourceID(typ, c.resZ[resourcePools[typ].n].draw(g)) }

	if c.isTimeGroup(i) {
		switch i % timeTemplates {
		case 0:
			var lives []string
			if g.IntN(2) == 0 {
				lives = []string{res("attended_live"), res("attended_live")}
			}
			return id, act("attended_live", lives, map[string]any{"within_last": days(between(1, 60))}, nil)
		case 1:
			return id, all(field("profile.last_activity_at", "more_than_ago", days(between(7, 60))),
				field("profile.status", "in", subset(statuses[:3], 2)))
		case 2:
			return id, all(field("profile.registered_at", "within_last", days(between(7, 90))),
				field("profile.utm.source", "eq", sources[g.IntN(len(sources)-1)].v))
		case 3:
			return id, act("opened_document", nil, map[string]any{"within_last": map[string]int{"hours": between(12, 120)}},
				map[string]int{"gte": between(1, 4)})
		case 4:
			return id, all(act("answered_topic", nil, map[string]any{"within_last": days(between(7, 45))}, map[string]int{"gte": between(1, 5)}),
				field("profile.tags", "has_any", []string{tag()}))
		default:
			return id, all(field("custom.renewal", "more_than_ago", days(between(0, 60))), field("custom.plan", "in", subset(plans, 3)))
		}
	}
	switch i % plainTemplates {
	case 0:
		tags := []string{anyTag()}
		if g.IntN(2) == 0 {
			tags = append(tags, tag())
		}
		return id, field("profile.tags", "has_any", tags)
	case 1:
		return id, field("profile.tags", "has_all", []string{tagName(g.IntN(20)), tagName(20 + g.IntN(60))})
	case 2:
		return id, all(field("profile.status", "in", subset(statuses[:3], 3)), field("profile.role", "neq", roles[g.IntN(len(roles))].v),
			field("profile.language", "in", subset(languages, 2)))
	case 3:
		return id, field("profile.email", "ends_with", fmt.Sprintf("@corp%03d.com", g.IntN(numDomains)))
	case 4:
		return id, all(field("custom.plan", "in", subset(plans, 3)), field("custom.seats", "gte", between(2, 200)))
	case 5:
		return id, all(field("custom.interests", "has_any", []string{interests[g.IntN(len(interests))]}),
			not(field("form.company_size", "in", subset(sizes, 2))))
	case 6:
		return id, act("attended_live", []string{res("attended_live"), res("attended_live"), res("attended_live")}, nil, nil)
	case 7:
		course := resourceID("completed_course", g.IntN(resourcePools["completed_course"].n))
		return id, act("completed_course", []string{course}, nil, map[string]int{"gte": between(1, 4)})
	case 8:
		return id, all(map[string]any{"group": fmt.Sprintf("static-%02d", g.IntN(numStatic))},
			act("opened_document", nil, nil, map[string]int{"gte": between(1, 12)}))
	case 9:
		if i > 0 { // a smart group defined earlier
			return id, anyOf(map[string]any{"group": fmt.Sprintf("g%04d", g.IntN(i))}, field("profile.tags", "has_any", []string{tag()}))
		}
		return id, field("profile.tags", "has_any", []string{"vip"})
	case 10:
		path := res("started_learning_path")
		return id, all(act("started_learning_path", []string{path}, nil, nil),
			act("completed_learning_path", []string{path}, nil, map[string]int{"eq": 0}), field("profile.tags", "has_any", []string{anyTag()}))
	case 11:
		words := []string{"ai", "go", "peers", "job", "startup", "teach", "hiring", "curious", "learn", "build"}
		return id, all(field("form.goal", "contains", words[g.IntN(len(words))]), field("profile.language", "in", subset(languages, 2)))
	case 12:
		return id, all(field("custom.beta_opt_in", "is_true", nil),
			field("custom.industry", "in", []string{fmt.Sprintf("ind-%02d", g.IntN(numIndustries)), fmt.Sprintf("ind-%02d", g.IntN(numIndustries))}))
	case 13:
		lo := g.IntN(10)
		return id, all(field("custom.nps", "between", []int{lo, between(lo, 10)}),
			field("custom.industry", "in", []string{fmt.Sprintf("ind-%02d", g.IntN(numIndustries))}))
	case 14:
		return id, all(field("profile.utm.campaign", "in", []string{fmt.Sprintf("camp-%02d", g.IntN(numCampaigns))}),
			field("profile.title", "eq", titles[g.IntN(len(titles))]))
	case 15:
		companies := []string{"acme", "globex", "initech", "umbrella", "hooli"}
		fs := make(weighted, len(functions))
		for j, f := range functions {
			fs[j].v = f
		}
		return id, anyOf(field("form.function", "in", subset(fs, 2)),
			field("custom.company", "starts_with", companies[g.IntN(len(companies))]))
	case 16:
		return id, all(field("profile.registered_at", "after", rfc(ms(c.Start())-int64(g.IntN(700))*86400000)),
			field("profile.static_groups", "has_none", []string{fmt.Sprintf("static-%02d", g.IntN(numStatic))}))
	default:
		return id, all(act("created_topic", nil, nil, map[string]int{"gte": between(1, 5)}),
			act("answered_topic", nil, nil, map[string]int{"gte": between(2, 20)}), field("profile.language", "in", subset(languages, 1)))
	}
}

// Backfill groups, created by the backfill measurement after the load.
const (
	IndexedBackfillGroup = "bench-backfill-indexed"
	ScanBackfillGroup    = "bench-backfill-scan"
)

// BackfillDefinitions returns two group definitions for spot 0: one whose
// rule the posting lists narrow (a mid-popularity tag and a plan), one
// whose rule no index narrows (a suffix of the email), which forces the
// evaluation of every eligible member.
func (c *Community) BackfillDefinitions() (indexed, scan Record) {
	spot := c.spots[0]
	mk := func(id string, rule any) Record {
		v := map[string]any{"kind": "group", "spot": spot, "id": id, "type": "smart", "name": id, "rule": rule}
		return Record{Kind: engine.KindDefinitions, Key: spot + "/group/" + id, Value: mustJSON(v)}
	}
	indexed = mk(IndexedBackfillGroup, map[string]any{"all": []any{
		map[string]any{"field": "profile.tags", "op": "has_any", "value": []string{tagName(12)}},
		map[string]any{"field": "custom.plan", "op": "in", "value": []string{"starter", "pro", "enterprise"}}}})
	scan = mk(ScanBackfillGroup, map[string]any{"field": "profile.email", "op": "ends_with", "value": "@corp007.com"})
	return indexed, scan
}
