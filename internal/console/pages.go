package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// layout is what every page's frame shows.
type layout struct {
	Title string
	CSRF  string
	Open  bool
	Spots []spotItem
	Spot  string
	Msg   string
	Err   string
}

func (s *req) layout(title, spot string) layout {
	l := layout{Title: title, CSRF: s.CSRF, Open: s.c.cfg.Open, Spot: spot, Msg: s.r.URL.Query().Get("msg")}
	spots, e := s.spots()
	if e != nil {
		l.Err = e.Message
	}
	l.Spots = spots
	return l
}

// fail renders an API error as a page.
func (s *req) fail(w http.ResponseWriter, spot string, e *apiErr, status int) {
	l := s.layout("Error", spot)
	l.Err = e.Message
	if status < 400 {
		status = http.StatusBadGateway
	}
	s.c.render(w, status, "error.html", l)
}

func statusOf(e *apiErr) int {
	switch e.Code {
	case "unauthorized":
		return http.StatusUnauthorized
	case "forbidden":
		return http.StatusForbidden
	case "group_not_found", "member_not_found", "not_found":
		return http.StatusNotFound
	}
	return http.StatusBadGateway
}

type spotSection struct {
	Spot   string
	Groups []group
	Err    string
}

type homeData struct {
	layout
	Sections []spotSection
}

// home is the landing page: the groups table of every spot the token may
// see, or of the spot picked.
func (c *Console) home(w http.ResponseWriter, r *http.Request, s *req) {
	pick := r.URL.Query().Get("spot")
	d := homeData{layout: s.layout("Groups", pick)}
	for _, sp := range d.Spots {
		if pick != "" && sp.ID != pick {
			continue
		}
		sec := spotSection{Spot: sp.ID}
		gs, e := s.groups(sp.ID)
		if e != nil {
			sec.Err = e.Message
		}
		sec.Groups = gs
		d.Sections = append(d.Sections, sec)
	}
	if pick != "" && len(d.Sections) == 0 {
		d.Err = "You cannot see spot " + pick + ", or it does not exist."
	}
	c.render(w, http.StatusOK, "home.html", d)
}

// groupCounts answers the member counts of a spot's groups as JSON, for the
// landing page to refresh its member counts without reloading.
func (c *Console) groupCounts(w http.ResponseWriter, r *http.Request, s *req) {
	spot := r.PathValue("spot")
	gs, e := s.groups(spot)
	if e != nil {
		http.Error(w, e.Message, statusOf(e))
		return
	}
	out := map[string]int{}
	for _, g := range gs {
		if g.MemberCount != nil {
			out[g.ID] = *g.MemberCount
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(out)
}

// ---- create: builder, preview, create ----

type builderData struct {
	layout
	B        *builder
	Cat      *catalog
	Group    *group // the group whose conditions are edited (nil: a new group)
	Preview  *previewData
	Diff     *diffData
	Action   string // the form's URL
	Editing  bool
	Kinds    []option
	Profile  []fieldInfo
	Ops      map[string][]option
	Acts     []option
	WhenOps  []option
	CountOps []option
	Statuses []option
}

type previewData struct {
	Count   int
	Shown   []memberSummary
	Blocked []string
}

type diffData struct {
	Added        []string `json:"added"`
	Removed      []string `json:"removed"`
	AddedCount   int      `json:"added_count"`
	RemovedCount int      `json:"removed_count"`
}

func (s *req) builderData(title, spot string, b *builder, cat *catalog, action string) builderData {
	return builderData{layout: s.layout(title, spot), B: b, Cat: cat, Action: action, Kinds: triggerKinds, Profile: profileFields,
		Ops: opsByType, Acts: activityTypes, WhenOps: whenOps, CountOps: countOps, Statuses: statuses}
}

func (c *Console) newGroup(w http.ResponseWriter, r *http.Request, s *req) {
	spot := r.PathValue("spot")
	cat, e := s.catalog(spot)
	if e != nil {
		s.fail(w, spot, e, statusOf(e))
		return
	}
	b := newBuilder()
	b.normalize(cat)
	c.render(w, http.StatusOK, "builder.html", s.builderData("Create group", spot, b, cat, "/spots/"+esc(spot)+"/groups/new"))
}

// builderPost runs an action of the create form: edit the conditions,
// preview (Save), blacklist from the preview, go back, create.
func (c *Console) builderPost(w http.ResponseWriter, r *http.Request, s *req) {
	spot := r.PathValue("spot")
	cat, e := s.catalog(spot)
	if e != nil {
		s.fail(w, spot, e, statusOf(e))
		return
	}
	b := parseBuilder(r.PostForm)
	action := r.PostFormValue("action")
	d := s.builderData("Create group", spot, b, cat, "/spots/"+esc(spot)+"/groups/new")
	status := http.StatusOK
	switch {
	case b.apply(action, cat):
		b.normalize(cat)
		if strings.HasPrefix(action, "blacklist:") || strings.HasPrefix(action, "unblacklist:") {
			d.Preview, status = s.preview(spot, b, cat)
		}
	case action == "preview":
		b.normalize(cat)
		if b.Name == "" {
			b.fieldErr("name", "A name is required.")
			status = http.StatusBadRequest
			break
		}
		if b.Type == "static" {
			status = c.create(w, s, spot, b, cat)
			if status == 0 {
				return
			}
			break
		}
		d.Preview, status = s.preview(spot, b, cat)
	case action == "create":
		b.normalize(cat)
		status = c.create(w, s, spot, b, cat)
		if status == 0 {
			return
		}
	default: // a selector changed, or "Back to editing"
		b.normalize(cat)
	}
	c.render(w, status, "builder.html", d)
}

// preview asks the API which members the rule matches now, leaving out the
// members blacklisted from the preview.
func (s *req) preview(spot string, b *builder, cat *catalog) (*previewData, int) {
	rule, err := b.rule(cat)
	if err != nil {
		b.placeError(err.Error())
		return nil, http.StatusBadRequest
	}
	res := s.call(http.MethodPost, spotPath(spot)+"/groups/preview", map[string]any{"rule": rule, "limit": min(1000, 50+len(b.Blacklist))})
	if e := res.err(); e != nil {
		b.placeError(e.Message)
		return nil, res.Status
	}
	var p struct {
		Count   int             `json:"count"`
		Members []memberSummary `json:"members"`
	}
	if err := res.decode(&p); err != nil {
		b.Err = err.Error()
		return nil, http.StatusBadGateway
	}
	out := &previewData{Count: p.Count, Blocked: b.Blacklist}
	for _, m := range p.Members {
		if slices.Contains(b.Blacklist, m.Member) {
			out.Count--
			continue
		}
		if len(out.Shown) < 50 {
			out.Shown = append(out.Shown, m)
		}
	}
	return out, http.StatusOK
}

// create creates the group. With members blacklisted from the preview, it
// first creates the group with a rule nobody matches, blacklists them,
// then sets the rule: they are never added, not even for a moment. It
// returns 0 once it redirected, else the status of the form to render.
func (c *Console) create(w http.ResponseWriter, s *req, spot string, b *builder, cat *catalog) int {
	body := map[string]any{"type": b.Type, "name": b.Name, "icon": b.Icon, "description": b.Description}
	var rule json.RawMessage
	if b.Type == "smart" {
		var err error
		if rule, err = b.rule(cat); err != nil {
			b.placeError(err.Error())
			return http.StatusBadRequest
		}
		body["rule"] = rule
		if len(b.Blacklist) > 0 {
			// Validate the real rule first: a dry run reports its errors.
			res := s.call(http.MethodPost, spotPath(spot)+"/groups?dry_run=true", body)
			if e := res.err(); e != nil {
				b.placeError(e.Message)
				return res.Status
			}
			body["rule"] = json.RawMessage(`{"any":[]}`)
		}
	}
	res := s.call(http.MethodPost, spotPath(spot)+"/groups", body)
	if e := res.err(); e != nil {
		if strings.HasPrefix(e.Message, "name") {
			b.fieldErr("name", e.Message)
		} else {
			b.placeError(e.Message)
		}
		return res.Status
	}
	var g group
	if err := res.decode(&g); err != nil {
		b.Err = err.Error()
		return http.StatusBadGateway
	}
	to := "/spots/" + esc(spot) + "/groups/" + esc(g.ID)
	if b.Type == "smart" && len(b.Blacklist) > 0 {
		for _, m := range b.Blacklist {
			if res := s.call(http.MethodPut, spotPath(spot)+"/groups/"+esc(g.ID)+"/blacklist/"+esc(m), nil); !res.ok() {
				s.back(w, withMsg(to, "The group was created without members; blacklisting "+m+" failed: "+res.err().Message))
				return 0
			}
		}
		res := s.call(http.MethodPatch, spotPath(spot)+"/groups/"+esc(g.ID), map[string]any{"rule": rule})
		if e := res.err(); e != nil {
			s.back(w, withMsg(to, "The group was created without members; setting its conditions failed: "+e.Message))
			return 0
		}
	}
	s.back(w, withMsg(to, "Group created."))
	return 0
}

// ---- group details ----

type groupData struct {
	layout
	G       group
	Tab     string
	Rule    string
	Refs    []group
	Confirm bool
	Cat     *catalog
	Edit    *builder
}

func (s *req) groupPage(w http.ResponseWriter, tab string) (*groupData, bool) {
	spot, id := s.r.PathValue("spot"), s.r.PathValue("id")
	g, e := s.group(spot, id)
	if e != nil {
		s.fail(w, spot, e, statusOf(e))
		return nil, false
	}
	d := &groupData{layout: s.layout(g.Name, spot), G: g, Tab: tab}
	if len(g.Rule) > 0 {
		d.Rule = prettyJSON(g.Rule)
	}
	return d, true
}

func prettyJSON(raw json.RawMessage) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

func (c *Console) groupGeneral(w http.ResponseWriter, r *http.Request, s *req) {
	d, ok := s.groupPage(w, "general")
	if !ok {
		return
	}
	s.withConditions(d)
	d.Confirm = r.URL.Query().Get("confirm") == "delete"
	c.render(w, http.StatusOK, "group.html", d)
}

// withConditions loads a smart group's conditions for the General tab.
func (s *req) withConditions(d *groupData) {
	if d.G.Type != "smart" {
		return
	}
	if cat, e := s.catalog(d.Spot); e == nil {
		d.Cat = cat
		b := newBuilder()
		b.fromRule(d.G.Rule)
		d.Edit = b
	}
}

// groupUpdateInfo saves the icon, name and description.
func (c *Console) groupUpdateInfo(w http.ResponseWriter, r *http.Request, s *req) {
	spot, id := r.PathValue("spot"), r.PathValue("id")
	body := map[string]any{"name": r.PostFormValue("name"), "icon": r.PostFormValue("icon"), "description": r.PostFormValue("description")}
	res := s.call(http.MethodPatch, spotPath(spot)+"/groups/"+esc(id), body)
	if e := res.err(); e != nil {
		d, ok := s.groupPage(w, "general")
		if !ok {
			return
		}
		d.Err = e.Message
		s.withConditions(d)
		d.G.Name, d.G.Icon, d.G.Description = r.PostFormValue("name"), r.PostFormValue("icon"), r.PostFormValue("description")
		c.render(w, res.Status, "group.html", d)
		return
	}
	s.back(w, withMsg("/spots/"+esc(spot)+"/groups/"+esc(id), "Saved."))
}

// groupDelete deletes a group; a 409 shows the groups referencing it.
func (c *Console) groupDelete(w http.ResponseWriter, r *http.Request, s *req) {
	spot, id := r.PathValue("spot"), r.PathValue("id")
	res := s.call(http.MethodDelete, spotPath(spot)+"/groups/"+esc(id), nil)
	if e := res.err(); e != nil {
		d, ok := s.groupPage(w, "general")
		if !ok {
			return
		}
		d.Err = e.Message
		s.withConditions(d)
		if refs, ok := e.Details["groups"].([]any); ok {
			for _, ref := range refs {
				if rid, ok := ref.(string); ok {
					g := group{ID: rid, Name: rid}
					if rg, e := s.group(spot, rid); e == nil {
						g = rg
					}
					d.Refs = append(d.Refs, g)
				}
			}
		}
		c.render(w, res.Status, "group.html", d)
		return
	}
	s.back(w, withMsg("/?spot="+url.QueryEscape(spot), "Group "+id+" deleted."))
}

// ---- conditions: edit, dry run, confirm ----

func (c *Console) editConditions(w http.ResponseWriter, r *http.Request, s *req) {
	spot, id := r.PathValue("spot"), r.PathValue("id")
	g, e := s.group(spot, id)
	if e != nil {
		s.fail(w, spot, e, statusOf(e))
		return
	}
	cat, e := s.catalog(spot)
	if e != nil {
		s.fail(w, spot, e, statusOf(e))
		return
	}
	b := newBuilder()
	b.Name, b.Type = g.Name, g.Type
	b.fromRule(g.Rule)
	b.normalize(cat)
	d := s.builderData("Edit conditions", spot, b, cat, "/spots/"+esc(spot)+"/groups/"+esc(id)+"/conditions")
	d.Group, d.Editing = &g, true
	c.render(w, http.StatusOK, "builder.html", d)
}

// conditionsPost runs an action of the conditions editor: "update" shows
// the dry run's diff, "confirm" applies the change.
func (c *Console) conditionsPost(w http.ResponseWriter, r *http.Request, s *req) {
	spot, id := r.PathValue("spot"), r.PathValue("id")
	g, e := s.group(spot, id)
	if e != nil {
		s.fail(w, spot, e, statusOf(e))
		return
	}
	cat, e := s.catalog(spot)
	if e != nil {
		s.fail(w, spot, e, statusOf(e))
		return
	}
	b := parseBuilder(r.PostForm)
	b.Name, b.Type = g.Name, g.Type
	action := r.PostFormValue("action")
	d := s.builderData("Edit conditions", spot, b, cat, "/spots/"+esc(spot)+"/groups/"+esc(id)+"/conditions")
	d.Group, d.Editing = &g, true
	status := http.StatusOK
	path := spotPath(spot) + "/groups/" + esc(id)
	switch {
	case b.apply(action, cat):
		b.normalize(cat)
	case action == "update", action == "confirm":
		b.normalize(cat)
		rule, err := b.rule(cat)
		if err != nil {
			b.placeError(err.Error())
			status = http.StatusBadRequest
			break
		}
		if action == "confirm" {
			res := s.call(http.MethodPatch, path, map[string]any{"rule": rule})
			if e := res.err(); e != nil {
				b.placeError(e.Message)
				status = res.Status
				break
			}
			s.back(w, withMsg("/spots/"+esc(spot)+"/groups/"+esc(id), "Conditions updated."))
			return
		}
		res := s.call(http.MethodPatch, path+"?dry_run=true&limit=200", map[string]any{"rule": rule})
		if e := res.err(); e != nil {
			b.placeError(e.Message)
			status = res.Status
			break
		}
		var diff diffData
		if err := res.decode(&diff); err != nil {
			b.Err = err.Error()
			status = http.StatusBadGateway
			break
		}
		d.Diff = &diff
	default:
		b.normalize(cat)
	}
	c.render(w, status, "builder.html", d)
}

// ---- members and blacklist ----

type membersData struct {
	groupData
	Q, Role, Status string
	Members         []memberSummary
	Next            string
	Blacklist       []string
	ShowBlacklist   bool
	Statuses        []option
}

func (c *Console) groupMembers(w http.ResponseWriter, r *http.Request, s *req) {
	d0, ok := s.groupPage(w, "members")
	if !ok {
		return
	}
	q := r.URL.Query()
	d := &membersData{groupData: *d0, Q: q.Get("q"), Role: q.Get("role"), Status: q.Get("status"),
		ShowBlacklist: q.Get("blacklist") == "1", Statuses: statuses[:3]}
	v := url.Values{}
	v.Set("limit", "100")
	for k, val := range map[string]string{"q": d.Q, "role": d.Role, "status": d.Status, "cursor": q.Get("cursor")} {
		if val != "" {
			v.Set(k, val)
		}
	}
	base := spotPath(d.Spot) + "/groups/" + esc(d.G.ID)
	res := s.call(http.MethodGet, base+"/members?"+v.Encode(), nil)
	status := http.StatusOK
	if e := res.err(); e != nil {
		d.Err, status = e.Message, res.Status
	} else {
		var l list[memberSummary]
		if err := res.decode(&l); err != nil {
			d.Err = err.Error()
		}
		d.Members, d.Next = l.Items, l.NextCursor
	}
	if d.G.Type == "smart" {
		bl, e := getList[struct {
			Member string `json:"member"`
		}](s, base+"/blacklist", 10000)
		if e != nil {
			d.Err = e.Message
		}
		for _, b := range bl {
			d.Blacklist = append(d.Blacklist, b.Member)
		}
	}
	c.render(w, status, "members.html", d)
}

// blacklistPost adds (op=add) or removes (op=remove) a blacklist entry.
func (c *Console) blacklistPost(w http.ResponseWriter, r *http.Request, s *req) {
	spot, id, member := r.PathValue("spot"), r.PathValue("id"), r.PostFormValue("member")
	method, msg := http.MethodPut, member+" is blacklisted."
	if r.PostFormValue("op") == "remove" {
		method, msg = http.MethodDelete, member+" is no longer blacklisted."
	}
	res := s.call(method, spotPath(spot)+"/groups/"+esc(id)+"/blacklist/"+esc(member), nil)
	if e := res.err(); e != nil {
		msg = e.Message
	}
	back := r.PostFormValue("back")
	if !strings.HasPrefix(back, "/spots/") {
		back = "/spots/" + esc(spot) + "/groups/" + esc(id) + "/members"
	}
	s.back(w, withMsg(back, msg))
}

// ---- resources ----

type resourcesData struct {
	groupData
	Q, Type   string
	Types     []string
	Resources []resource
}

func (c *Console) groupResources(w http.ResponseWriter, r *http.Request, s *req) {
	d0, ok := s.groupPage(w, "resources")
	if !ok {
		return
	}
	q := r.URL.Query()
	d := &resourcesData{groupData: *d0, Q: q.Get("q"), Type: q.Get("type"), Types: []string{"live", "course", "channel", "forum", "collection"}}
	v := url.Values{}
	if d.Q != "" {
		v.Set("q", d.Q)
	}
	if d.Type != "" {
		v.Set("type", d.Type)
	}
	path := spotPath(d.Spot) + "/groups/" + esc(d.G.ID) + "/resources"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	rs, e := getList[resource](s, path, 10000)
	status := http.StatusOK
	if e != nil {
		d.Err, status = e.Message, statusOf(e)
	}
	d.Resources = rs
	c.render(w, status, "resources.html", d)
}
