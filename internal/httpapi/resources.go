package httpapi

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/smartgroups/smartgroups/engine"
)

// groupResources lists a group's linked resources (SPEC §2.4) in id order:
// q searches titles (case-insensitive substring), type filters by type;
// cursor and limit page like the other lists.
func (a *API) groupResources(w http.ResponseWriter, r *http.Request, _ principal) *apiError {
	spot, id := r.PathValue("spot"), r.PathValue("id")
	limit, after, e := idPage(r)
	if e != nil {
		return e
	}
	q := strings.ToLower(r.URL.Query().Get("q"))
	typ := r.URL.Query().Get("type")
	if typ != "" && !slices.Contains(engine.ResourceTypes, typ) {
		return errorf(http.StatusBadRequest, CodeInvalidRequest, "type must be one of %s, not %q", strings.Join(engine.ResourceTypes, ", "), typ)
	}
	g, ok := a.lookupGroup(spot, id)
	if !ok {
		return errorf(http.StatusNotFound, CodeGroupNotFound, "group %q does not exist in spot %q", id, spot)
	}
	rs := slices.Clone(g.Resources)
	slices.SortFunc(rs, func(x, y engine.Resource) int { return strings.Compare(x.ID, y.ID) })
	out := listResponse[engine.Resource]{Items: []engine.Resource{}}
	for _, res := range rs {
		if res.ID <= after || (typ != "" && res.Type != typ) || !strings.Contains(strings.ToLower(res.Title), q) {
			continue
		}
		if len(out.Items) == limit {
			out.NextCursor = encodeCursor(out.Items[limit-1].ID)
			break
		}
		out.Items = append(out.Items, res)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// memberResources lists the resources a member has access to, each with
// the groups giving it, in id order.
func (a *API) memberResources(w http.ResponseWriter, r *http.Request, _ principal) *apiError {
	spot, member := r.PathValue("spot"), r.PathValue("member")
	p := a.eng.PartitionOf(spot, member)
	rs, e := gather[[]engine.MemberResource](a, r, spot, partialRequest{Op: opMemberResources, Member: member}, []int32{p})
	if e != nil {
		return e
	}
	if len(rs) != 1 {
		return errorf(http.StatusInternalServerError, CodeInternal, "member resources got %d answers", len(rs))
	}
	writeJSON(w, http.StatusOK, listResponse[engine.MemberResource]{Items: rs[0]})
	return nil
}

// gatherAccessDiff sums the access a group change would grant and revoke,
// per resource, over every partition.
func (a *API) gatherAccessDiff(r *http.Request, spot, group string, rule json.RawMessage, resources []engine.Resource) (map[string]engine.AccessCount, *apiError) {
	req := partialRequest{Op: opAccessDiff, Group: group, Rule: rule, Resources: resources}
	diffs, e := gather[map[string]engine.AccessCount](a, r, spot, req, a.allPartitions())
	if e != nil {
		return nil, e
	}
	out := map[string]engine.AccessCount{}
	for _, d := range diffs {
		for _, id := range slices.Sorted(maps.Keys(d)) {
			c := out[id]
			c.Granted += d[id].Granted
			c.Revoked += d[id].Revoked
			out[id] = c
		}
	}
	return out, nil
}
