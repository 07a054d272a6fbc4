package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ---- member page ----

type historyItem struct {
	TS     string `json:"ts"`
	Op     string `json:"op"`
	Reason string `json:"reason"`
	Seq    uint64 `json:"seq"`
	Cause  any    `json:"cause"`
}

type memberData struct {
	layout
	Member    string
	Profile   map[string]any
	ProfileJS string
	Groups    []group
	Resources []struct {
		ID     string   `json:"id"`
		Type   string   `json:"type"`
		Title  string   `json:"title"`
		Groups []string `json:"groups"`
	}
	SmartGroups []group
	Cat         *catalog
	Explain     *explainData
	ExplainFor  string
	History     []historyItem
	HistoryNote string
	HistoryNext string
}

type explainData struct {
	InGroup     bool           `json:"in_group"`
	Eligible    bool           `json:"eligible"`
	Blacklisted bool           `json:"blacklisted"`
	Rule        map[string]any `json:"rule"`
	EvaluatedAt string         `json:"evaluated_at"`
}

// memberPage shows a member: profile, groups, resources, the explanation
// of one group's rule for them and their membership history.
func (c *Console) memberPage(w http.ResponseWriter, r *http.Request, s *req) {
	spot, member := r.PathValue("spot"), r.PathValue("member")
	d := memberData{layout: s.layout(member, spot), Member: member, ExplainFor: r.URL.Query().Get("group")}
	base := spotPath(spot) + "/members/" + esc(member)
	if res := s.call(http.MethodGet, base, nil); res.ok() {
		var p map[string]any
		if res.decode(&p) == nil {
			d.Profile = p
			b, _ := json.MarshalIndent(p, "", "  ")
			d.ProfileJS = string(b)
		}
	}
	res := s.call(http.MethodGet, base+"/groups", nil)
	if e := res.err(); e != nil {
		s.fail(w, spot, e, statusOf(e))
		return
	}
	var gl list[group]
	_ = res.decode(&gl)
	d.Groups = gl.Items
	if res := s.call(http.MethodGet, base+"/resources", nil); res.ok() {
		var rl struct {
			Items []struct {
				ID     string   `json:"id"`
				Type   string   `json:"type"`
				Title  string   `json:"title"`
				Groups []string `json:"groups"`
			} `json:"items"`
		}
		if res.decode(&rl) == nil {
			d.Resources = rl.Items
		}
	}
	if cat, e := s.catalog(spot); e == nil {
		d.Cat = cat
	}
	all, _ := s.groups(spot)
	for _, g := range all {
		if g.Type == "smart" {
			d.SmartGroups = append(d.SmartGroups, g)
		}
	}
	if d.ExplainFor == "" && len(d.Groups) > 0 {
		for _, g := range d.Groups {
			if g.Type == "smart" {
				d.ExplainFor = g.ID
				break
			}
		}
	}
	if d.ExplainFor == "" && len(d.SmartGroups) > 0 {
		d.ExplainFor = d.SmartGroups[0].ID
	}
	if d.ExplainFor != "" {
		res := s.call(http.MethodGet, spotPath(spot)+"/groups/"+esc(d.ExplainFor)+"/explain/"+esc(member), nil)
		if e := res.err(); e != nil {
			d.Err = e.Message
		} else {
			var x explainData
			if res.decode(&x) == nil {
				d.Explain = &x
			}
		}
		hp := base + "/history?limit=50&group=" + url.QueryEscape(d.ExplainFor)
		if cur := r.URL.Query().Get("cursor"); cur != "" {
			hp += "&cursor=" + url.QueryEscape(cur)
		}
		res = s.call(http.MethodGet, hp, nil)
		switch {
		case res.ok():
			var h list[historyItem]
			if res.decode(&h) == nil {
				d.History, d.HistoryNext = h.Items, h.NextCursor
			}
			if len(d.History) == 0 {
				d.HistoryNote = "No membership changes recorded for this group."
			}
		case res.Status == http.StatusNotFound:
			d.HistoryNote = "No history: this server does not keep membership history."
		default:
			d.HistoryNote = "No history: " + res.err().Message
		}
	}
	c.render(w, http.StatusOK, "member.html", d)
}

// ---- live feed ----

func (c *Console) feedPage(w http.ResponseWriter, r *http.Request, s *req) {
	spot := r.PathValue("spot")
	d := struct {
		layout
		Group string
	}{s.layout("Live feed", spot), r.URL.Query().Get("group")}
	c.render(w, http.StatusOK, "feed.html", d)
}

// events streams GET /v1/spots/{spot}/events to the browser: an EventSource
// cannot send an Authorization header, so the console calls the API
// in-process with the session's token, streaming straight through.
func (c *Console) events(w http.ResponseWriter, r *http.Request, s *req) {
	path := spotPath(r.PathValue("spot")) + "/events"
	if g := r.URL.Query().Get("group"); g != "" {
		path += "?group=" + url.QueryEscape(g)
	}
	u, err := url.Parse(path)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r2 := r.Clone(r.Context())
	r2.URL, r2.RequestURI, r2.Header = u, "", http.Header{}
	if s.sess.Token != "" {
		r2.Header.Set("Authorization", "Bearer "+s.sess.Token)
	}
	c.cfg.API.ServeHTTP(w, r2)
}

// ---- size over time ----

type sizePoint struct {
	TS      string `json:"ts"`
	Members int    `json:"members"`
}

// size reads a group's size series over the last `span`.
func (s *req) size(spot, id string, span time.Duration) ([]sizePoint, *apiErr) {
	now := s.c.cfg.Now().UTC()
	v := url.Values{}
	v.Set("from", now.Add(-span).Format(time.RFC3339))
	v.Set("to", now.Format(time.RFC3339))
	res := s.call(http.MethodGet, spotPath(spot)+"/groups/"+esc(id)+"/size?"+v.Encode(), nil)
	if e := res.err(); e != nil {
		return nil, e
	}
	var out struct {
		Points []sizePoint `json:"points"`
	}
	if err := res.decode(&out); err != nil {
		return nil, &apiErr{Code: "internal", Message: err.Error()}
	}
	return out.Points, nil
}

func spanParam(r *http.Request) time.Duration {
	switch r.URL.Query().Get("span") {
	case "1h":
		return time.Hour
	case "7d":
		return 7 * 24 * time.Hour
	}
	return 24 * time.Hour
}

// sizeJSON answers the size series of one group (?group=) as uPlot's
// columns: [[unix seconds…], [members…]].
func (c *Console) sizeJSON(w http.ResponseWriter, r *http.Request, s *req) {
	pts, e := s.size(r.PathValue("spot"), r.URL.Query().Get("group"), spanParam(r))
	if e != nil {
		http.Error(w, e.Message, statusOf(e))
		return
	}
	xs, ys := make([]int64, 0, len(pts)), make([]int, 0, len(pts))
	for _, p := range pts {
		t, err := time.Parse(time.RFC3339Nano, p.TS)
		if err != nil {
			continue
		}
		xs, ys = append(xs, t.Unix()), append(ys, p.Members)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode([]any{xs, ys})
}

// groupSize is the group's size tab: a chart of its member count.
func (c *Console) groupSize(w http.ResponseWriter, r *http.Request, s *req) {
	if r.URL.Query().Get("format") == "svg" {
		pts, _ := s.size(r.PathValue("spot"), r.PathValue("id"), spanParam(r))
		w.Header().Set("Content-Type", "image/svg+xml")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 24" width="100" height="24"><polyline fill="none" stroke="#2563eb" stroke-width="1.5" points="%s"/></svg>`, sparkline(pts))
		return
	}
	d, ok := s.groupPage(w, "size")
	if !ok {
		return
	}
	span := r.URL.Query().Get("span")
	if span == "" {
		span = "24h"
	}
	data := struct {
		*groupData
		Span   string
		Points int
	}{d, span, 0}
	if pts, e := s.size(d.Spot, d.G.ID, spanParam(r)); e != nil {
		d.Err = e.Message
	} else {
		data.Points = len(pts)
	}
	c.render(w, http.StatusOK, "size.html", data)
}

// sparkline renders a size series as the points of an SVG polyline in a
// 100×24 box.
func sparkline(pts []sizePoint) string {
	switch len(pts) {
	case 0:
		return ""
	case 1:
		return "0,12 100,12"
	}
	lo, hi := pts[0].Members, pts[0].Members
	for _, p := range pts {
		lo, hi = min(lo, p.Members), max(hi, p.Members)
	}
	var b strings.Builder
	for i, p := range pts {
		x := float64(i) * 100 / float64(len(pts)-1)
		y := 12.0
		if hi > lo {
			y = 22 - float64(p.Members-lo)*20/float64(hi-lo)
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s,%s", strconv.FormatFloat(x, 'f', 1, 64), strconv.FormatFloat(y, 'f', 1, 64))
	}
	return b.String()
}
