package httpapi

import (
	"net/http"

	"github.com/smartgroups/smartgroups/engine"
)

// getMember answers GET /v1/spots/{spot}/members/{member}: everything the
// engine holds about a member, from the instance owning its partition.
func (a *API) getMember(w http.ResponseWriter, r *http.Request, _ principal) *apiError {
	spot, member := r.PathValue("spot"), r.PathValue("member")
	p := a.eng.PartitionOf(spot, member)
	infos, e := gather[*engine.MemberInfo](a, r, spot, partialRequest{Op: opMember, Member: member}, []int32{p})
	if e != nil {
		return e
	}
	if len(infos) != 1 {
		return errorf(http.StatusInternalServerError, CodeInternal, "member got %d answers", len(infos))
	}
	writeJSON(w, http.StatusOK, infos[0])
	return nil
}

// historyCursor is the cursor of a history page: the transition number
// the next page starts before.
type historyCursor struct {
	Before uint64 `json:"b"`
}

// memberHistory answers GET /v1/spots/{spot}/members/{member}/history:
// the member's transitions, newest first, of one group when ?group= is
// given, from the instance owning its partition.
func (a *API) memberHistory(w http.ResponseWriter, r *http.Request, _ principal) *apiError {
	spot, member := r.PathValue("spot"), r.PathValue("member")
	limit, e := limitParam(r, 50, 1000)
	if e != nil {
		return e
	}
	var c historyCursor
	if s := r.URL.Query().Get("cursor"); s != "" {
		if e := decodeCursor(s, &c); e != nil {
			return e
		}
		if c.Before == 0 {
			return errorf(http.StatusBadRequest, CodeInvalidCursor, "cursor is not one returned by this API")
		}
	}
	p := a.eng.PartitionOf(spot, member)
	req := partialRequest{Op: opHistory, Member: member, Group: r.URL.Query().Get("group"), Before: c.Before, Limit: limit}
	pages, e := gather[*engine.HistoryPage](a, r, spot, req, []int32{p})
	if e != nil {
		return e
	}
	if len(pages) != 1 {
		return errorf(http.StatusInternalServerError, CodeInternal, "history got %d answers", len(pages))
	}
	out := listResponse[engine.HistoryEntry]{Items: pages[0].Items}
	if pages[0].Next != 0 {
		out.NextCursor = encodeCursor(historyCursor{Before: pages[0].Next})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
