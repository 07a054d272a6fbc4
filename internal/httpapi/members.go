package httpapi

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/engine/rule"
)

type previewBody struct {
	// Rule is the rule to preview (required).
	Rule json.RawMessage `json:"rule"`
	// Group, optional, is an existing smart group whose blacklist applies
	// (previewing a change of that group's rule).
	Group string `json:"group"`
	// Limit is the size of the first page, default 50, at most 1000.
	Limit int `json:"limit"`
}

type previewResponse struct {
	Count   int                    `json:"count"`
	Members []engine.MemberSummary `json:"members"`
}

// preview answers POST …/groups/preview: the eligible members a rule
// matches now, blacklist-aware, with the exact count and the first page in
// name order, computed from the posting lists on every partition.
func (a *API) preview(w http.ResponseWriter, r *http.Request, _ principal) *apiError {
	spot := r.PathValue("spot")
	var body previewBody
	if e := decodeBody(r, &body); e != nil {
		return e
	}
	if isNull(body.Rule) {
		return errorf(http.StatusBadRequest, CodeInvalidRequest, "rule is required")
	}
	if body.Limit == 0 {
		body.Limit = 50
	}
	if body.Limit < 1 || body.Limit > 1000 {
		return errorf(http.StatusBadRequest, CodeInvalidRequest, "limit must be from 1 to 1000, not %d", body.Limit)
	}
	// Validate the rule as the rule of a smart group: of body.Group when
	// given (so that a group trigger on itself is a cycle), else of a
	// group that does not exist.
	id := "preview"
	if body.Group != "" {
		g, ok := a.lookupGroup(spot, body.Group)
		if !ok {
			return errorf(http.StatusNotFound, CodeGroupNotFound, "group %q does not exist in spot %q", body.Group, spot)
		}
		if g.Type != engine.GroupSmart {
			return errorf(http.StatusBadRequest, CodeInvalidRequest, "group %q is static: only smart groups have a blacklist", body.Group)
		}
		id = body.Group
	} else {
		for {
			if _, taken := a.lookupGroup(spot, id); !taken {
				break
			}
			id += "-"
		}
	}
	value, err := json.Marshal(engine.GroupDef{Kind: "group", Spot: spot, ID: id, Type: engine.GroupSmart, Name: "preview", Rule: body.Rule})
	if err != nil {
		return errorf(http.StatusBadRequest, CodeInvalidJSON, "rule: %v", err)
	}
	if re := a.eng.CheckDefinition(groupKey(spot, id), value); re != nil {
		if body.Group == "" {
			return fromRecordErrorOf(re, id)
		}
		return fromRecordError(re)
	}
	page, e := a.gatherMembers(r, spot, partialRequest{Op: opMembers, Rule: body.Rule, Blacklist: body.Group, Limit: body.Limit})
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, previewResponse{Count: page.Total, Members: page.Members})
	return nil
}

// multi returns a query parameter given repeatedly and/or comma-separated.
func multi(r *http.Request, name string) []string {
	var out []string
	for _, v := range r.URL.Query()[name] {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

// groupMembers answers GET …/groups/{id}/members: sorted by display name
// (first name, last name, member id), q searching names and email,
// role and status filters, and a cursor holding the sort key of the last
// member returned, so concurrent inserts and deletes neither repeat nor
// skip the members after it.
func (a *API) groupMembers(w http.ResponseWriter, r *http.Request, _ principal) *apiError {
	spot, id := r.PathValue("spot"), r.PathValue("id")
	if _, ok := a.lookupGroup(spot, id); !ok {
		return errorf(http.StatusNotFound, CodeGroupNotFound, "group %q does not exist in spot %q", id, spot)
	}
	limit, e := limitParam(r, 50, 1000)
	if e != nil {
		return e
	}
	q := partialRequest{Op: opMembers, Group: id, Limit: limit, Filter: &filter{
		Query: r.URL.Query().Get("q"), Roles: multi(r, "role"), Statuses: multi(r, "status")}}
	for _, s := range q.Filter.Statuses {
		if !slices.Contains(rule.Statuses, s) {
			return errorf(http.StatusBadRequest, CodeInvalidRequest, "status %q is not one of %s", s, strings.Join(rule.Statuses, ", "))
		}
	}
	if c := r.URL.Query().Get("cursor"); c != "" {
		var k engine.SortKey
		if e := decodeCursor(c, &k); e != nil {
			return e
		}
		q.After = &k
	}
	page, e := a.gatherMembers(r, spot, q)
	if e != nil {
		return e
	}
	out := listResponse[engine.MemberSummary]{Items: page.Members}
	if page.Remaining > len(page.Members) && len(page.Members) > 0 {
		out.NextCursor = encodeCursor(page.Members[len(page.Members)-1].Key())
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) explain(w http.ResponseWriter, r *http.Request, _ principal) *apiError {
	spot, id, member := r.PathValue("spot"), r.PathValue("id"), r.PathValue("member")
	if _, ok := a.lookupGroup(spot, id); !ok {
		return errorf(http.StatusNotFound, CodeGroupNotFound, "group %q does not exist in spot %q", id, spot)
	}
	x, e := a.gatherExplain(r, spot, id, member)
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, x)
	return nil
}

type groupRef struct {
	ID   string           `json:"id"`
	Name string           `json:"name"`
	Type engine.GroupType `json:"type"`
}

func (a *API) groupRefs(spot string, ids []string) []groupRef {
	out := []groupRef{}
	a.eng.ViewDefs(func(d *engine.Defs) {
		sd := d.Spot(spot)
		if sd == nil {
			return
		}
		for _, id := range ids {
			if g := sd.Groups[id]; g != nil {
				out = append(out, groupRef{ID: id, Name: g.Name, Type: g.Type})
			}
		}
	})
	return out
}

func (a *API) memberGroups(w http.ResponseWriter, r *http.Request, _ principal) *apiError {
	spot, member := r.PathValue("spot"), r.PathValue("member")
	ids, e := a.gatherMemberGroups(r, spot, member)
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, listResponse[groupRef]{Items: a.groupRefs(spot, ids)})
	return nil
}

type blacklistEntry struct {
	Group  string `json:"group"`
	Member string `json:"member"`
}

func blacklistKey(spot, group, member string) string {
	return spot + "/blacklist/" + group + "/" + member
}

func (a *API) listBlacklist(w http.ResponseWriter, r *http.Request, _ principal) *apiError {
	spot, id := r.PathValue("spot"), r.PathValue("id")
	limit, e := limitParam(r, 100, 1000)
	if e != nil {
		return e
	}
	var after string
	if c := r.URL.Query().Get("cursor"); c != "" {
		if e := decodeCursor(c, &after); e != nil {
			return e
		}
	}
	found := false
	var members []string
	a.eng.ViewDefs(func(d *engine.Defs) {
		sd := d.Spot(spot)
		if sd == nil || sd.Groups[id] == nil {
			return
		}
		found = true
		for m := range sd.Blacklist[id] {
			if m > after {
				members = append(members, m)
			}
		}
	})
	if !found {
		return errorf(http.StatusNotFound, CodeGroupNotFound, "group %q does not exist in spot %q", id, spot)
	}
	slices.Sort(members)
	out := listResponse[blacklistEntry]{Items: []blacklistEntry{}}
	if len(members) > limit {
		members = members[:limit]
		out.NextCursor = encodeCursor(members[limit-1])
	}
	for _, m := range members {
		out.Items = append(out.Items, blacklistEntry{Group: id, Member: m})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) putBlacklist(w http.ResponseWriter, r *http.Request, _ principal) *apiError {
	return a.writeBlacklist(w, r, true)
}

func (a *API) deleteBlacklist(w http.ResponseWriter, r *http.Request, _ principal) *apiError {
	return a.writeBlacklist(w, r, false)
}

// writeBlacklist puts (put) or deletes the blacklist entry a request
// names. Putting a present entry answers 200 and writes nothing; deleting
// an absent one is 404.
func (a *API) writeBlacklist(w http.ResponseWriter, r *http.Request, put bool) *apiError {
	spot, id, member := r.PathValue("spot"), r.PathValue("id"), r.PathValue("member")
	a.writeMu.Lock()
	defer a.writeMu.Unlock()
	if _, ok := a.lookupGroup(spot, id); !ok {
		return errorf(http.StatusNotFound, CodeGroupNotFound, "group %q does not exist in spot %q", id, spot)
	}
	entry := blacklistEntry{Group: id, Member: member}
	var present bool
	a.eng.ViewDefs(func(d *engine.Defs) { present = d.Blacklisted(spot, id, member) })
	var value []byte // nil: a delete
	switch {
	case put && present:
		writeJSON(w, http.StatusOK, entry)
		return nil
	case put:
		value, _ = json.Marshal(engine.Blacklist{Kind: "blacklist", Spot: spot, Group: id, Member: member})
	case !present:
		return errorf(http.StatusNotFound, CodeEntryNotFound, "member %q is not blacklisted in group %q", member, id)
	}
	key := blacklistKey(spot, id, member)
	if re := a.eng.CheckDefinition(key, value); re != nil {
		return fromRecordError(re)
	}
	if _, e := a.write(r.Context(), key, value); e != nil {
		return e
	}
	if put {
		writeJSON(w, http.StatusCreated, entry)
	} else {
		w.WriteHeader(http.StatusNoContent)
	}
	return nil
}
