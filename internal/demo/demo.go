package demo

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/smartgroups/smartgroups/engine"
)

// Record is one generated input record.
type Record struct {
	Kind  engine.Kind
	Key   string
	Value json.RawMessage // nil for a tombstone
}

// Config shapes the community.
type Config struct {
	// Spots are the spot ids. Default "acme" and "globex".
	Spots []string
	// Members per spot. Default 2,000.
	Members int
	// Seed of the random source. Default 1.
	Seed uint64
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{Spots: []string{"acme", "globex"}, Members: 2000, Seed: 1}
}

// Generator produces the records of a community.
type Generator struct {
	cfg     Config
	r       *rand.Rand
	weights []float64 // cumulative activity weight per member index
	seq     int
}

// New returns a generator.
func New(cfg Config) *Generator {
	if len(cfg.Spots) == 0 {
		cfg.Spots = DefaultConfig().Spots
	}
	if cfg.Members <= 0 {
		cfg.Members = DefaultConfig().Members
	}
	g := &Generator{cfg: cfg, r: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))}
	// Zipf-like activity: member i has weight 1/(i+1)^0.9.
	total := 0.0
	g.weights = make([]float64, cfg.Members)
	for i := range g.weights {
		total += 1 / math.Pow(float64(i+1), 0.9)
		g.weights[i] = total
	}
	for i := range g.weights {
		g.weights[i] /= total
	}
	return g
}

var (
	firstNames = []string{"Ada", "Grace", "Linus", "Margaret", "Alan", "Barbara", "Ken", "Radia", "Dennis", "Frances", "Élodie", "Jürgen", "Søren", "Aiko", "Mateo"}
	lastNames  = []string{"Lovelace", "Hopper", "Torvalds", "Hamilton", "Turing", "Liskov", "Thompson", "Perlman", "Ritchie", "Allen", "Dubois", "Müller", "Nielsen", "Tanaka", "García"}
	tags       = []string{"vip", "beta", "speaker", "mentor", "newcomer", "partner", "alumni", "ambassador"}
	languages  = []string{"en", "fr", "de", "en-GB", "es", "ja"}
	sources    = []string{"google", "newsletter", "linkedin", "partner", "event"}
	lives      = []string{"live-weekly-ama", "live-product-demo", "live-onboarding", "live-roadmap"}
	courses    = []string{"course-intro", "course-advanced", "course-admin"}
	documents  = []string{"doc-handbook", "doc-pricing", "doc-api"}
	topics     = []string{"topic-welcome", "topic-feedback", "topic-showcase"}
	activities = []string{"registered_to_live", "attended_live", "watched_replay", "started_course", "completed_course",
		"opened_document", "opened_link", "created_topic", "answered_topic", "started_learning_path", "completed_learning_path"}
)

func (g *Generator) pick(ss []string) string { return ss[g.r.IntN(len(ss))] }

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("demo: marshal: %v", err)) // values are built here from plain maps
	}
	return b
}

// resource is a linked resource of a demo group (SPEC §2.4).
func resource(id, typ, title string) map[string]string {
	return map[string]string{"id": id, "type": typ, "title": title}
}

// linked are the resources of the demo groups. Some are shared by several
// groups (the weekly AMA, the intro course, the VIP lounge), so that a
// member leaving one of them keeps access while another still gives it.
var linked = map[string][]map[string]string{
	"ambassadors":        {resource("channel-ambassadors", "channel", "Ambassadors"), resource("live-roadmap", "live", "Roadmap preview")},
	"live-last-hour":     {resource("live-weekly-ama", "live", "Weekly AMA")},
	"recent-attendees":   {resource("live-weekly-ama", "live", "Weekly AMA"), resource("forum-live-qa", "forum", "Live Q&A")},
	"engaged-vips":       {resource("live-weekly-ama", "live", "Weekly AMA"), resource("channel-vip-lounge", "channel", "VIP lounge")},
	"paying-teams":       {resource("course-advanced", "course", "Advanced course"), resource("collection-playbooks", "collection", "Playbooks")},
	"renewing-soon":      {resource("live-roadmap", "live", "Roadmap preview")},
	"ai-builders":        {resource("channel-ai", "channel", "AI builders"), resource("course-advanced", "course", "Advanced course")},
	"small-companies-fr": {resource("forum-fr", "forum", "Forum francophone")},
	"dormant":            {resource("course-intro", "course", "Getting started")},
	"course-finishers":   {resource("collection-playbooks", "collection", "Playbooks")},
	"google-newcomers":   {resource("course-intro", "course", "Getting started"), resource("live-onboarding", "live", "Onboarding live")},
	"ambassador-vips":    {resource("channel-vip-lounge", "channel", "VIP lounge"), resource("live-roadmap", "live", "Roadmap preview")},
}

// Definitions returns the schemas and groups of every spot.
func (g *Generator) Definitions() []Record {
	var out []Record
	for _, spot := range g.cfg.Spots {
		def := func(kind, id string, v map[string]any) {
			v["kind"], v["spot"], v["id"] = kind, spot, id
			out = append(out, Record{Kind: engine.KindDefinitions, Key: spot + "/" + kind + "/" + id, Value: mustJSON(v)})
		}
		def("property", "plan", map[string]any{"label": "Plan", "type": "single_select",
			"options": []map[string]string{{"id": "free", "label": "Free"}, {"id": "pro", "label": "Pro"}, {"id": "enterprise", "label": "Enterprise"}}})
		def("property", "seats", map[string]any{"label": "Seats", "type": "number"})
		def("property", "renewal", map[string]any{"label": "Renewal date", "type": "date"})
		def("property", "beta_opt_in", map[string]any{"label": "Beta opt-in", "type": "boolean"})
		def("property", "interests", map[string]any{"label": "Interests", "type": "multi_select",
			"options": []map[string]string{{"id": "ai", "label": "AI"}, {"id": "go", "label": "Go"}, {"id": "data", "label": "Data"}, {"id": "design", "label": "Design"}}})
		def("question", "company_size", map[string]any{"label": "Company size", "type": "single_select",
			"options": []map[string]string{{"id": "1-10", "label": "1-10"}, {"id": "11-50", "label": "11-50"}, {"id": "51+", "label": "51+"}}})
		def("question", "goal", map[string]any{"label": "What brings you here?", "type": "text"})
		def("group", "ambassadors", map[string]any{"type": "static", "name": "Ambassadors",
			"resources": linked["ambassadors"]})
		smart := func(id, name string, rule any) {
			def("group", id, map[string]any{"type": "smart", "name": name, "rule": rule, "resources": linked[id]})
		}
		smart("live-last-hour", "Attended a live in the last hour", map[string]any{
			"activity": "attended_live", "when": map[string]any{"within_last": map[string]int{"hours": 1}}})
		smart("recent-attendees", "Attended a live in the last 7 days", map[string]any{
			"activity": "attended_live", "when": map[string]any{"within_last": map[string]int{"days": 7}}})
		smart("engaged-vips", "Engaged VIPs", map[string]any{"all": []any{
			map[string]any{"field": "profile.tags", "op": "has_any", "value": []string{"VIP", "speaker"}},
			map[string]any{"activity": "attended_live", "count": map[string]int{"gte": 3}}}})
		smart("paying-teams", "Paying teams", map[string]any{"all": []any{
			map[string]any{"field": "custom.plan", "op": "in", "value": []string{"pro", "enterprise"}},
			map[string]any{"field": "custom.seats", "op": "gte", "value": 10}}})
		smart("renewing-soon", "Renewal within a month", map[string]any{"all": []any{
			map[string]any{"field": "custom.renewal", "op": "after", "value": "2026-01-01T00:00:00Z"},
			map[string]any{"field": "custom.beta_opt_in", "op": "is_true"}}})
		smart("ai-builders", "AI builders", map[string]any{"any": []any{
			map[string]any{"field": "custom.interests", "op": "has_all", "value": []string{"ai", "go"}},
			map[string]any{"field": "form.goal", "op": "contains", "value": "agent"}}})
		smart("small-companies-fr", "French-speaking small companies", map[string]any{"all": []any{
			map[string]any{"field": "form.company_size", "op": "in", "value": []string{"1-10", "11-50"}},
			map[string]any{"field": "profile.language", "op": "starts_with", "value": "fr"}}})
		smart("dormant", "No activity for 30 days", map[string]any{"all": []any{
			map[string]any{"field": "profile.last_activity_at", "op": "more_than_ago", "value": map[string]int{"days": 30}},
			map[string]any{"field": "profile.status", "op": "in", "value": []string{"accepted"}}}})
		smart("course-finishers", "Finished a course, never a learning path", map[string]any{"all": []any{
			map[string]any{"activity": "completed_course", "resources": courses[:2]},
			map[string]any{"activity": "completed_learning_path", "count": map[string]int{"eq": 0}}}})
		smart("google-newcomers", "Newcomers from Google", map[string]any{"all": []any{
			map[string]any{"field": "profile.utm.source", "op": "eq", "value": "google"},
			map[string]any{"field": "profile.registered_at", "op": "within_last", "value": map[string]int{"days": 14}}}})
		smart("ambassador-vips", "Ambassadors among engaged VIPs", map[string]any{"all": []any{
			map[string]any{"group": "ambassadors"}, map[string]any{"group": "engaged-vips"},
			map[string]any{"not": map[string]any{"field": "profile.role", "op": "eq", "value": "admin"}}}})
	}
	return out
}

func (g *Generator) member(i int) string { return fmt.Sprintf("m%05d", i) }

// Members returns one initial profile and property record per member.
func (g *Generator) Members(now time.Time) []Record {
	var out []Record
	for _, spot := range g.cfg.Spots {
		for i := 0; i < g.cfg.Members; i++ {
			out = append(out, g.profile(spot, i, now, true), g.properties(spot, i, now))
		}
	}
	return out
}

func (g *Generator) profile(spot string, i int, now time.Time, initial bool) Record {
	m := g.member(i)
	p := map[string]any{}
	if initial {
		fn, ln := g.pick(firstNames), g.pick(lastNames)
		status := []string{"accepted", "accepted", "accepted", "accepted", "invited", "pending", "deactivated"}[g.r.IntN(7)]
		p = map[string]any{"first_name": fn, "last_name": ln, "email": fmt.Sprintf("%s.%s%d@example.com", fn, ln, i),
			"status": status, "role": []string{"member", "member", "member", "admin"}[g.r.IntN(4)], "language": g.pick(languages),
			"registered_at":    now.Add(-time.Duration(g.r.IntN(60*24)) * time.Hour).Format(time.RFC3339),
			"last_activity_at": now.Add(-time.Duration(g.r.IntN(90*24)) * time.Hour).Format(time.RFC3339),
			"utm":              map[string]string{"source": g.pick(sources)}}
		var ts []string
		for _, t := range tags {
			if g.r.IntN(5) == 0 {
				ts = append(ts, t)
			}
		}
		p["tags"] = ts
		if g.r.IntN(10) == 0 {
			p["static_groups"] = []string{"ambassadors"}
		}
	} else {
		switch g.r.IntN(4) {
		case 0:
			p["status"] = []string{"accepted", "invited", "pending", "deactivated", "unsubscribed"}[g.r.IntN(5)]
		case 1:
			p["tags"] = []string{g.pick(tags), g.pick(tags)}
		case 2:
			p["language"] = g.pick(languages)
		default:
			p["title"] = []any{"Engineer", "Designer", "Founder", nil}[g.r.IntN(4)]
		}
	}
	return g.record(engine.KindProfiles, spot, m, now, map[string]any{"profile": p})
}

func (g *Generator) properties(spot string, i int, now time.Time) Record {
	m := g.member(i)
	custom := map[string]any{"plan": g.pick([]string{"free", "free", "pro", "enterprise"}), "seats": g.r.IntN(40),
		"renewal":     now.Add(time.Duration(g.r.IntN(400)-100) * 24 * time.Hour).Format(time.RFC3339),
		"beta_opt_in": g.r.IntN(3) == 0}
	var interests []string
	for _, x := range []string{"ai", "go", "data", "design"} {
		if g.r.IntN(3) == 0 {
			interests = append(interests, x)
		}
	}
	custom["interests"] = interests
	form := map[string]any{"company_size": g.pick([]string{"1-10", "11-50", "51+"}),
		"goal": g.pick([]string{"Build AI agents", "Learn Go", "Meet peers", "Hiring"})}
	return g.record(engine.KindProperties, spot, m, now, map[string]any{"custom": custom, "form": form})
}

func (g *Generator) record(kind engine.Kind, spot, m string, now time.Time, v map[string]any) Record {
	v["spot"], v["member"], v["ts"] = spot, m, now.UTC().Format(time.RFC3339Nano)
	return Record{Kind: kind, Key: spot + "/" + m, Value: mustJSON(v)}
}

// powerMember picks a member index, active members more often.
func (g *Generator) powerMember() int {
	x := g.r.Float64()
	lo, hi := 0, len(g.weights)-1
	for lo < hi {
		mid := (lo + hi) / 2
		if g.weights[mid] < x {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// Next returns the next record of the live stream at instant now: mostly
// activities of power-law-active members, some profile and property
// updates.
func (g *Generator) Next(now time.Time) Record {
	g.seq++
	spot := g.cfg.Spots[g.r.IntN(len(g.cfg.Spots))]
	i := g.powerMember()
	switch x := g.r.IntN(100); {
	case x < 8:
		return g.profile(spot, i, now, false)
	case x < 12:
		return g.properties(spot, i, now)
	default:
		typ := g.pick(activities)
		res := map[string]string{}
		switch typ {
		case "registered_to_live", "attended_live", "watched_replay":
			res["id"] = g.pick(lives)
		case "started_course", "completed_course", "started_learning_path", "completed_learning_path":
			res["id"] = g.pick(courses)
		case "opened_document", "opened_link":
			res["id"] = g.pick(documents)
		default:
			res["id"] = g.pick(topics)
		}
		res["title"] = res["id"]
		if typ == "attended_live" && g.r.IntN(2) == 0 {
			// Reported late: it leaves the one-hour window within minutes,
			// which shows time-driven changes.
			now = now.Add(-time.Duration(50+g.r.IntN(10)) * time.Minute)
		}
		return g.record(engine.KindActivities, spot, g.member(i), now, map[string]any{
			"id": fmt.Sprintf("evt-%d-%d", g.cfg.Seed, g.seq), "type": typ, "resource": res})
	}
}
