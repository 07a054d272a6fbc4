package httpapi

import (
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/smartgroups/smartgroups/engine"
)

// groupView is a group as the API returns it: its definition (SPEC §4.1)
// plus member_count (null only when the count could not be gathered right
// after a write that did succeed).
type groupView struct {
	engine.GroupDef
	MemberCount *int `json:"member_count"`
}

// groupBody is the body of POST …/groups.
type groupBody struct {
	Kind        string            `json:"kind"`
	Spot        string            `json:"spot"`
	ID          string            `json:"id"`
	Type        engine.GroupType  `json:"type"`
	Name        string            `json:"name"`
	Icon        string            `json:"icon"`
	Description string            `json:"description"`
	Rule        json.RawMessage   `json:"rule"`
	Resources   []engine.Resource `json:"resources"`
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

func groupKey(spot, id string) string { return spot + "/group/" + id }

// lookupGroup copies a group definition.
func (a *API) lookupGroup(spot, id string) (engine.GroupDef, bool) {
	var g engine.GroupDef
	var ok bool
	a.eng.ViewDefs(func(d *engine.Defs) {
		if sd := d.Spot(spot); sd != nil {
			if def := sd.Groups[id]; def != nil {
				g, ok = *def, true
			}
		}
	})
	return g, ok
}

func (a *API) nowTS() json.RawMessage {
	b, _ := json.Marshal(a.cfg.Now().UTC().Format(time.RFC3339Nano))
	return b
}

func newGroupID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return "g-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

func boolParam(r *http.Request, name string) (bool, *apiError) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, errorf(http.StatusBadRequest, CodeInvalidRequest, "query parameter %s must be true or false, not %q", name, v)
	}
	return b, nil
}

func limitParam(r *http.Request, def, maxLimit int) (int, *apiError) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxLimit {
		return 0, errorf(http.StatusBadRequest, CodeInvalidRequest, "limit must be a whole number from 1 to %d, not %q", maxLimit, v)
	}
	return n, nil
}

// Cursors are opaque to clients: base64url of a small JSON value naming
// the sort key of the last item returned.
func encodeCursor(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string, v any) *apiError {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		return errorf(http.StatusBadRequest, CodeInvalidCursor, "cursor is not one returned by this API")
	}
	return nil
}

type listResponse[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

func (a *API) createGroup(w http.ResponseWriter, r *http.Request, _ principal) *apiError {
	spot := r.PathValue("spot")
	dry, e := boolParam(r, "dry_run")
	if e != nil {
		return e
	}
	var body groupBody
	if e := decodeBody(r, &body); e != nil {
		return e
	}
	switch {
	case body.Kind != "" && body.Kind != "group":
		return errorf(http.StatusBadRequest, CodeInvalidRequest, "kind must be \"group\" (or absent), not %q", body.Kind)
	case body.Spot != "" && body.Spot != spot:
		return errorf(http.StatusBadRequest, CodeInvalidRequest, "spot %q in the body does not match spot %q of the path", body.Spot, spot)
	case body.Type != engine.GroupStatic && body.Type != engine.GroupSmart:
		return errorf(http.StatusBadRequest, CodeInvalidRequest, "type is required: static or smart")
	}
	generated := body.ID == ""
	if generated {
		body.ID = newGroupID()
	}
	checkErr := func(re *engine.RecordError) *apiError {
		if generated {
			return fromRecordErrorOf(re, body.ID)
		}
		return fromRecordError(re)
	}
	if isNull(body.Rule) {
		body.Rule = nil
	}
	def := engine.GroupDef{Kind: "group", Spot: spot, ID: body.ID, Type: body.Type, Name: body.Name,
		Icon: body.Icon, Description: body.Description, Rule: body.Rule, TS: a.nowTS(), Resources: body.Resources}
	value, err := json.Marshal(def)
	if err != nil {
		return errorf(http.StatusBadRequest, CodeInvalidJSON, "rule: %v", err)
	}
	key := groupKey(spot, body.ID)
	if dry {
		if _, exists := a.lookupGroup(spot, body.ID); exists {
			return errorf(http.StatusConflict, CodeAlreadyExists, "group %q already exists", body.ID)
		}
		if re := a.eng.CheckDefinition(key, value); re != nil {
			return checkErr(re)
		}
		q := partialRequest{Op: opMembers, Limit: 50, Rule: def.Rule}
		if def.Type == engine.GroupStatic {
			q.Rule, q.StaticGroup = nil, def.ID
		}
		page, e := a.gatherMembers(r, spot, q)
		if e != nil {
			return e
		}
		writeJSON(w, http.StatusOK, previewResponse{Count: page.Total, Members: page.Members})
		return nil
	}
	a.writeMu.Lock()
	defer a.writeMu.Unlock()
	if _, exists := a.lookupGroup(spot, body.ID); exists {
		return errorf(http.StatusConflict, CodeAlreadyExists, "group %q already exists", body.ID)
	}
	if re := a.eng.CheckDefinition(key, value); re != nil {
		return checkErr(re)
	}
	off, e := a.write(r.Context(), key, value)
	if e != nil {
		return e
	}
	view := a.viewAfterWrite(r, spot, body.ID, off)
	w.Header().Set("Location", "/v1/spots/"+url.PathEscape(spot)+"/groups/"+url.PathEscape(body.ID))
	writeJSON(w, http.StatusCreated, view)
	return nil
}

// viewAfterWrite returns a group as applied, with its member count as of
// the write (or null when the count cannot be gathered).
func (a *API) viewAfterWrite(r *http.Request, spot, id string, off int64) groupView {
	g, _ := a.lookupGroup(spot, id)
	v := groupView{GroupDef: g}
	counts, e := a.gatherCounts(r, spot, off+1)
	if e != nil {
		a.cfg.Logger.Warn("member count after a write", "spot", spot, "group", id, "err", e.Message)
		return v
	}
	n := counts[id]
	v.MemberCount = &n
	return v
}

func (a *API) getGroup(w http.ResponseWriter, r *http.Request, _ principal) *apiError {
	spot, id := r.PathValue("spot"), r.PathValue("id")
	g, ok := a.lookupGroup(spot, id)
	if !ok {
		return errorf(http.StatusNotFound, CodeGroupNotFound, "group %q does not exist in spot %q", id, spot)
	}
	counts, e := a.gatherCounts(r, spot, 0)
	if e != nil {
		return e
	}
	n := counts[id]
	writeJSON(w, http.StatusOK, groupView{GroupDef: g, MemberCount: &n})
	return nil
}

func (a *API) listGroups(w http.ResponseWriter, r *http.Request, _ principal) *apiError {
	spot := r.PathValue("spot")
	limit, after, e := idPage(r)
	if e != nil {
		return e
	}
	var page []engine.GroupDef
	more := false
	a.eng.ViewDefs(func(d *engine.Defs) {
		sd := d.Spot(spot)
		if sd == nil {
			return
		}
		ids := make([]string, 0, len(sd.Groups))
		for id := range sd.Groups {
			if id > after {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		if len(ids) > limit {
			ids, more = ids[:limit], true
		}
		for _, id := range ids {
			page = append(page, *sd.Groups[id])
		}
	})
	out := listResponse[groupView]{Items: []groupView{}}
	if len(page) > 0 {
		counts, e := a.gatherCounts(r, spot, 0)
		if e != nil {
			return e
		}
		for _, g := range page {
			n := counts[g.ID]
			out.Items = append(out.Items, groupView{GroupDef: g, MemberCount: &n})
		}
		if more {
			out.NextCursor = encodeCursor(page[len(page)-1].ID)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// patchGroup updates name, icon, description, rule and resources (SPEC
// §6). Present fields replace; icon, description and resources accept
// null to clear. type, id,
// kind and spot may be given but must not change.
func (a *API) patchGroup(w http.ResponseWriter, r *http.Request, _ principal) *apiError {
	spot, id := r.PathValue("spot"), r.PathValue("id")
	dry, e := boolParam(r, "dry_run")
	if e != nil {
		return e
	}
	var patch map[string]json.RawMessage
	if e := decodeBody(r, &patch); e != nil {
		return e
	}
	if patch == nil {
		return errorf(http.StatusBadRequest, CodeInvalidJSON, "request body must be a JSON object")
	}
	if !dry {
		a.writeMu.Lock()
		defer a.writeMu.Unlock()
	}
	old, ok := a.lookupGroup(spot, id)
	if !ok {
		return errorf(http.StatusNotFound, CodeGroupNotFound, "group %q does not exist in spot %q", id, spot)
	}
	def := old
	def.TS = a.nowTS()
	str := func(k string, raw json.RawMessage, nullable bool) (string, *apiError) {
		var s string
		if isNull(raw) {
			if nullable {
				return "", nil
			}
			return "", errorf(http.StatusBadRequest, CodeInvalidRequest, "%s cannot be null", k)
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", errorf(http.StatusBadRequest, CodeInvalidRequest, "%s must be a string", k)
		}
		return s, nil
	}
	ruleChanged, resourcesChanged := false, false
	for _, k := range slices.Sorted(maps.Keys(patch)) {
		raw := patch[k]
		var err *apiError
		switch k {
		case "name":
			def.Name, err = str(k, raw, false)
		case "icon":
			def.Icon, err = str(k, raw, true)
		case "description":
			def.Description, err = str(k, raw, true)
		case "rule":
			if old.Type == engine.GroupStatic && !isNull(raw) {
				return errorf(http.StatusBadRequest, CodeInvalidRequest, "group %q is static: it has no rule", id)
			}
			if old.Type == engine.GroupSmart && isNull(raw) {
				return errorf(http.StatusBadRequest, CodeInvalidRequest, "smart group %q needs a rule", id)
			}
			if old.Type == engine.GroupSmart {
				def.Rule = raw
				ruleChanged = true
			}
		case "resources":
			def.Resources, resourcesChanged = nil, true
			if !isNull(raw) {
				if jerr := json.Unmarshal(raw, &def.Resources); jerr != nil {
					return errorf(http.StatusBadRequest, CodeInvalidRequest, "resources must be a list of {\"id\", \"type\", \"title\"}")
				}
			}
		case "type":
			var t string
			if t, err = str(k, raw, false); err == nil && engine.GroupType(t) != old.Type {
				return errorf(http.StatusBadRequest, CodeTypeChange, "group %q is %s; a group's type cannot change", id, old.Type)
			}
		case "id", "kind", "spot":
			want := map[string]string{"id": id, "kind": "group", "spot": spot}[k]
			var v string
			if v, err = str(k, raw, false); err == nil && v != want {
				return errorf(http.StatusBadRequest, CodeInvalidRequest, "%s cannot change (%q, not %q)", k, want, v)
			}
		default:
			return errorf(http.StatusBadRequest, CodeInvalidRequest,
				"unknown field %q (a group's name, icon, description, rule and resources can be updated)", k)
		}
		if err != nil {
			return err
		}
	}
	value, err := json.Marshal(def)
	if err != nil {
		return errorf(http.StatusBadRequest, CodeInvalidJSON, "rule: %v", err)
	}
	key := groupKey(spot, id)
	if re := a.eng.CheckDefinition(key, value); re != nil {
		return fromRecordError(re)
	}
	if dry {
		out := diffResponse{Added: []string{}, Removed: []string{}, Access: map[string]engine.AccessCount{}}
		if ruleChanged || resourcesChanged {
			var newRule json.RawMessage
			if ruleChanged {
				newRule = def.Rule
			}
			acc, e := a.gatherAccessDiff(r, spot, id, newRule, def.Resources)
			if e != nil {
				return e
			}
			for rid, c := range acc {
				if c.Granted > 0 || c.Revoked > 0 {
					out.Access[rid] = c
				}
			}
		}
		if ruleChanged {
			limit, e := limitParam(r, 1000, 100000)
			if e != nil {
				return e
			}
			d, e := a.gatherDiff(r, spot, id, def.Rule, limit)
			if e != nil {
				return e
			}
			out.Added, out.Removed, out.AddedCount, out.RemovedCount = d.Added, d.Removed, d.AddedCount, d.RemovedCount
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	off, e := a.write(r.Context(), key, value)
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, a.viewAfterWrite(r, spot, id, off))
	return nil
}

type diffResponse struct {
	Added        []string `json:"added"`
	Removed      []string `json:"removed"`
	AddedCount   int      `json:"added_count"`
	RemovedCount int      `json:"removed_count"`
	// Access is, per resource, how many members the change would grant
	// and revoke it (resources without a change are left out).
	Access map[string]engine.AccessCount `json:"access"`
}

func (a *API) deleteGroup(w http.ResponseWriter, r *http.Request, _ principal) *apiError {
	spot, id := r.PathValue("spot"), r.PathValue("id")
	a.writeMu.Lock()
	defer a.writeMu.Unlock()
	if _, ok := a.lookupGroup(spot, id); !ok {
		return errorf(http.StatusNotFound, CodeGroupNotFound, "group %q does not exist in spot %q", id, spot)
	}
	key := groupKey(spot, id)
	if re := a.eng.CheckDefinition(key, nil); re != nil {
		e := fromRecordError(re)
		if re.Code == engine.CodeReferenced {
			e = e.with("groups", a.refs(spot, func(sd *engine.SpotDefs) []string { return sd.ReferencingGroups(id) }))
		}
		return e
	}
	if _, e := a.write(r.Context(), key, nil); e != nil {
		return e
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// refs runs a references query on a spot's definitions.
func (a *API) refs(spot string, f func(sd *engine.SpotDefs) []string) []string {
	out := []string{}
	a.eng.ViewDefs(func(d *engine.Defs) {
		if sd := d.Spot(spot); sd != nil {
			out = append(out, f(sd)...)
		}
	})
	return out
}

// idPage reads the limit and the cursor (the last id of the previous page)
// of a list ordered by id.
func idPage(r *http.Request) (limit int, after string, e *apiError) {
	limit, e = limitParam(r, 100, 1000)
	if e != nil {
		return 0, "", e
	}
	if c := r.URL.Query().Get("cursor"); c != "" {
		if e := decodeCursor(c, &after); e != nil {
			return 0, "", e
		}
	}
	return limit, after, nil
}
