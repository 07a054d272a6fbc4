package httpapi

import (
	"net/http"

	"github.com/smartgroups/smartgroups/engine"
)

type spotView struct {
	ID     string `json:"id"`
	Groups int    `json:"groups"`
}

// listSpots answers GET /v1/spots: the spots the token may see, in id
// order, with their group counts. The admin token sees every spot that has
// definitions; a spot token sees its own spot (also before it has any).
func (a *API) listSpots(w http.ResponseWriter, r *http.Request, p principal) *apiError {
	if !a.cfg.Ready() {
		return errorf(http.StatusServiceUnavailable, CodeNotReady, "the instance is starting: definitions are still loading")
	}
	a.catchUp(r.Context())
	out := listResponse[spotView]{Items: []spotView{}}
	a.eng.ViewDefs(func(d *engine.Defs) {
		count := func(spot string) int {
			if sd := d.Spot(spot); sd != nil {
				return len(sd.Groups)
			}
			return 0
		}
		if !p.admin {
			out.Items = append(out.Items, spotView{ID: p.spot, Groups: count(p.spot)})
			return
		}
		for _, s := range d.Spots() {
			// Lookups create empty entries: list spots with definitions.
			if sd := d.Spot(s); len(sd.Groups)+len(sd.Properties)+len(sd.Questions) > 0 {
				out.Items = append(out.Items, spotView{ID: s, Groups: count(s)})
			}
		}
	})
	writeJSON(w, http.StatusOK, out)
	return nil
}
