package bench

import (
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/smartgroups/smartgroups/engine"
)

type profileValue struct {
	Spot    string         `json:"spot"`
	Member  string         `json:"member"`
	TS      any            `json:"ts"`
	Profile map[string]any `json:"profile"`
}

type propertiesValue struct {
	Spot   string         `json:"spot"`
	Member string         `json:"member"`
	TS     any            `json:"ts"`
	Custom map[string]any `json:"custom,omitempty"`
	Form   map[string]any `json:"form,omitempty"`
}

type resource struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

type activityValue struct {
	Spot     string    `json:"spot"`
	Member   string    `json:"member"`
	TS       any       `json:"ts"`
	ID       string    `json:"id"`
	Type     string    `json:"type"`
	Resource *resource `json:"resource,omitempty"`
}

// tsValue writes a ts as RFC 3339 mostly, as epoch milliseconds sometimes.
func (c *Community) tsValue(t int64) any {
	if c.r.IntN(5) == 0 {
		return t
	}
	return rfc(t)
}

// Initial returns the initial load of spot s's member i: a full profile
// and a properties record at LoadStart. Its last_activity_at follows the
// member's own activity rate (the gap since the last activity of a Poisson
// process), so that rules on it start in a steady state.
func (c *Community) Initial(s, i int) (profile, properties Record) {
	spot, m := c.spots[s], memberID(i)
	start := ms(c.LoadStart())
	fn, ln := firstNames[c.r.IntN(len(firstNames))], lastNames[c.r.IntN(len(lastNames))]
	domain := "gmail.com"
	if c.r.IntN(10) < 6 {
		domain = fmt.Sprintf("corp%03d.com", c.domainZ.draw(c.r))
	}
	registered := start - int64(c.r.IntN(720*24))*3600000
	last := registered
	if rate := c.activityRate(s, i); rate > 0 {
		if gap := c.r.ExpFloat64() / rate; gap < float64(start-registered) {
			last = start - int64(gap)
		}
	}
	p := map[string]any{"first_name": fn, "last_name": ln, "email": fmt.Sprintf("%s.%s.%d@%s", fn, ln, i, domain),
		"status": statuses.pick(c.r), "role": roles.pick(c.r), "language": languages.pick(c.r),
		"registered_at": rfc(registered), "last_activity_at": rfc(last)}
	if c.r.IntN(10) < 3 {
		p["invited_at"] = rfc(start - int64(c.r.IntN(900*24))*3600000)
	}
	if c.r.IntN(2) == 0 {
		p["title"] = titles[c.r.IntN(len(titles))]
	}
	if src := sources.pick(c.r); src != "" {
		p["utm"] = map[string]string{"source": src, "medium": mediums.pick(c.r), "campaign": fmt.Sprintf("camp-%02d", c.campaignZ.draw(c.r))}
	}
	if tags := c.tags(); len(tags) > 0 {
		p["tags"] = tags
	}
	if c.r.IntN(100) < 15 {
		sg := []string{fmt.Sprintf("static-%02d", c.r.IntN(numStatic))}
		if c.r.IntN(3) == 0 {
			sg = append(sg, fmt.Sprintf("static-%02d", c.r.IntN(numStatic)))
		}
		p["static_groups"] = sg
	}
	profile = c.rec(engine.KindProfiles, spot, m, profileValue{Spot: spot, Member: m, TS: c.tsValue(start), Profile: p})
	properties = c.rec(engine.KindProperties, spot, m, propertiesValue{Spot: spot, Member: m, TS: c.tsValue(start),
		Custom: c.custom(start, true), Form: c.form(true)})
	return profile, properties
}

// tags draws a member's tags: geometric count (mean ~1.2), Zipf-popular.
func (c *Community) tags() []string {
	var out []string
	for c.r.IntN(100) < 55 && len(out) < 12 {
		out = append(out, tagName(c.tagZ.draw(c.r)))
	}
	return out
}

func (c *Community) custom(start int64, initial bool) map[string]any {
	m := map[string]any{}
	if initial || c.r.IntN(3) == 0 {
		m["plan"] = plans.pick(c.r)
	}
	if initial || c.r.IntN(3) == 0 {
		m["seats"] = int(math.Min(math.Exp(c.r.NormFloat64()*1.2+1.5), 5000))
	}
	if initial && c.r.IntN(4) != 0 || c.r.IntN(5) == 0 {
		m["renewal"] = rfc(start + int64(c.r.IntN(500)-120)*86400000)
	}
	if initial || c.r.IntN(5) == 0 {
		m["beta_opt_in"] = c.r.IntN(4) == 0
	}
	if initial && c.r.IntN(3) != 0 || c.r.IntN(4) == 0 {
		var xs []string
		seen := map[int]bool{}
		for n := 1 + c.r.IntN(3); n > 0; n-- {
			j := c.interestZ.draw(c.r)
			if !seen[j] {
				seen[j] = true
				xs = append(xs, interests[j])
			}
		}
		m["interests"] = xs
	}
	if initial && c.r.IntN(2) == 0 || c.r.IntN(6) == 0 {
		m["industry"] = fmt.Sprintf("ind-%02d", c.r.IntN(numIndustries))
	}
	if initial && c.r.IntN(3) == 0 || c.r.IntN(4) == 0 {
		m["nps"] = c.r.IntN(11)
	}
	if initial && c.r.IntN(2) == 0 {
		m["company"] = []string{"Acme", "Globex", "Initech", "Umbrella", "Hooli", "Acme Labs"}[c.r.IntN(6)]
	}
	return m
}

func (c *Community) form(initial bool) map[string]any {
	m := map[string]any{}
	if initial && c.r.IntN(10) < 7 || c.r.IntN(3) == 0 {
		m["company_size"] = sizes.pick(c.r)
	}
	if initial && c.r.IntN(2) == 0 || c.r.IntN(4) == 0 {
		m["goal"] = goals[c.r.IntN(len(goals))]
	}
	if initial && c.r.IntN(2) == 0 || c.r.IntN(4) == 0 {
		m["function"] = functions[c.r.IntN(len(functions))]
	}
	if len(m) == 0 {
		m["goal"] = goals[c.r.IntN(len(goals))]
	}
	return m
}

func (c *Community) rec(kind engine.Kind, spot, m string, v any) Record {
	return Record{Kind: kind, Key: spot + "/" + m, Value: mustJSON(v)}
}

// Live returns the next live record at instant ts (epoch ms): a member
// drawn with power-law frequency does something (85% activities, 10%
// profile updates, 5% property updates). The record's ts is ts, moved
// later by a few milliseconds when needed to make (spot, member, ts)
// unique; it is returned with the record.
func (c *Community) Live(ts int64) (Record, int64) {
	r, _, _, t := c.live(ts)
	return r, t
}

// LiveKey is Live returning the spot and member too.
func (c *Community) LiveKey(ts int64) (rec Record, spot, member string, t int64) { return c.live(ts) }

func (c *Community) live(ts int64) (Record, string, string, int64) {
	c.seq++
	s := c.r.IntN(len(c.spots))
	spot := c.spots[s]
	i := min(sort.SearchFloat64s(c.activity[s], c.r.Float64()), c.perSpot[s]-1)
	m := memberID(i)
	// ts is unique per member, so (spot, member, ts) names a record.
	if last := c.lastTS[s][i]; last != 0 && ts <= last {
		ts = last + 1
	}
	c.lastTS[s][i] = ts
	switch x := c.r.IntN(100); {
	case x < 10:
		p := map[string]any{}
		switch y := c.r.IntN(100); {
		case y < 35:
			p["tags"] = c.tags()
		case y < 50:
			p["last_activity_at"] = rfc(ts)
		case y < 60:
			p["title"] = titles[c.r.IntN(len(titles))]
		case y < 70:
			p["language"] = languages.pick(c.r)
		case y < 80:
			p["status"] = statuses.pick(c.r)
		case y < 90:
			p["role"] = roles.pick(c.r)
		default:
			p["utm"] = map[string]any{"campaign": fmt.Sprintf("camp-%02d", c.campaignZ.draw(c.r))}
		}
		return c.rec(engine.KindProfiles, spot, m, profileValue{Spot: spot, Member: m, TS: c.tsValue(ts), Profile: p}), spot, m, ts
	case x < 15:
		v := propertiesValue{Spot: spot, Member: m, TS: c.tsValue(ts)}
		if c.r.IntN(3) == 0 {
			v.Form = c.form(false)
		} else {
			v.Custom = c.custom(ts, false)
			if len(v.Custom) == 0 {
				v.Custom["nps"] = c.r.IntN(11)
			}
		}
		return c.rec(engine.KindProperties, spot, m, v), spot, m, ts
	default:
		if past := c.lastAct[s][i]; past.seq != 0 && c.r.IntN(100) == 0 {
			// A producer retry: this member's last activity sent again.
			c.retries++
			return c.activityRecord(spot, m, past), spot, m, past.ts
		}
		past := pastActivity{seq: int32(c.seq), ts: ts, typ: uint8(activityMix.index(c.r)), res: -1, millis: c.r.IntN(5) == 0}
		if p, ok := resourcePools[activityMix[past.typ].v]; ok {
			past.res = int16(c.resZ[p.n].draw(c.r))
		}
		c.lastAct[s][i] = past
		return c.activityRecord(spot, m, past), spot, m, ts
	}
}

// activityRecord encodes an activity record.
func (c *Community) activityRecord(spot, m string, a pastActivity) Record {
	typ := activityMix[a.typ].v
	v := activityValue{Spot: spot, Member: m, TS: rfc(a.ts), ID: "e" + strconv.Itoa(int(a.seq)), Type: typ}
	if a.millis {
		v.TS = a.ts
	}
	if a.res >= 0 {
		id := resourceID(typ, int(a.res))
		v.Resource = &resource{ID: id, Title: "Title of " + id}
	}
	return c.rec(engine.KindActivities, spot, m, v)
}

// HistoryRecords is the number of records of the initial load's history:
// the same process as the live stream over [LoadStart, Start), with as
// many records per unit of time.
func (c *Community) HistoryRecords() int {
	if c.cfg.Events == 0 || c.cfg.History <= 0 {
		return 0
	}
	return int(float64(c.cfg.History.Milliseconds()) / c.streamStep)
}

// NextHistory returns the next record of the history; call it
// HistoryRecords times, after Initial for every member and before NextLive.
func (c *Community) NextHistory() Record {
	c.historied++
	r, _ := c.Live(ms(c.LoadStart()) + int64(float64(c.historied)*c.streamStep) - 1)
	return r
}

// NextLive returns the next record of the backlog's live stream, whose ts
// advance evenly over [End-Span, End].
func (c *Community) NextLive() Record {
	ts := ms(c.Start()) + int64(float64(c.streamed+1)*c.streamStep)
	c.streamed++
	r, _ := c.Live(ts)
	return r
}
