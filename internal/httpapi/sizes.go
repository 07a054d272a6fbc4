package httpapi

import (
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/smartgroups/smartgroups/state"
)

// SizeStore reads the group size points an instance recorded (serve
// samples every group's member count per owned partition).
type SizeStore interface {
	ReadSizes(spot, group string, from, to int64, fn func(p state.SizePoint)) error
}

var _ SizeStore = (*state.Store)(nil)

// sizeCarry is how long a partition's point stands for the minutes after
// it: the recorder writes a point when the count changes and at least
// once an hour, so a partition without a point for longer had no owner
// recording it (the minutes are left out rather than guessed).
const sizeCarry = time.Hour + 2*time.Minute

// maxSizeSpan bounds the span of one size request.
const maxSizeSpan = 31 * 24 * time.Hour

// sizePart is one partition's point as a peer answers it.
type sizePart struct {
	Partition int32  `json:"p"`
	TS        int64  `json:"t"`
	Members   uint64 `json:"n"`
}

type sizePoint struct {
	TS      string `json:"ts"`
	Members uint64 `json:"members"`
}

type sizeResponse struct {
	Points []sizePoint `json:"points"`
}

// timeParam reads an RFC 3339 instant or epoch milliseconds.
func timeParam(r *http.Request, name string, def time.Time) (time.Time, *apiError) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.UnixMilli(ms).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, errorf(http.StatusBadRequest, CodeInvalidRequest, "%s must be an RFC 3339 instant or epoch milliseconds, not %q", name, v)
	}
	return t.UTC(), nil
}

// groupSize answers GET …/groups/{id}/size?from=&to=: the group's member
// count once a minute over [from, to] (default the last 24 hours), summed
// over the partitions of every instance. Minutes without a recorded point
// are left out.
func (a *API) groupSize(w http.ResponseWriter, r *http.Request, _ principal) *apiError {
	spot, id := r.PathValue("spot"), r.PathValue("id")
	if _, ok := a.lookupGroup(spot, id); !ok {
		return errorf(http.StatusNotFound, CodeGroupNotFound, "group %q does not exist in spot %q", id, spot)
	}
	now := a.cfg.Now().UTC()
	to, e := timeParam(r, "to", now)
	if e != nil {
		return e
	}
	from, e := timeParam(r, "from", to.Add(-24*time.Hour))
	if e != nil {
		return e
	}
	switch {
	case from.After(to):
		return errorf(http.StatusBadRequest, CodeInvalidRequest, "from (%s) is after to (%s)", from.Format(time.RFC3339), to.Format(time.RFC3339))
	case to.Sub(from) > maxSizeSpan:
		return errorf(http.StatusBadRequest, CodeInvalidRequest, "from and to are more than %d days apart", int(maxSizeSpan.Hours()/24))
	}
	parts, e := gather[[]sizePart](a, r, spot, partialRequest{Op: opSize, Group: id,
		From: from.Add(-sizeCarry).UnixMilli(), To: to.UnixMilli()}, a.allPartitions())
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, sizeResponse{Points: sumSizes(parts, from, to)})
	return nil
}

// sumSizes merges the points instances recorded into one point per minute
// of [from, to]: per partition, the latest point at or before the minute
// (if not older than sizeCarry), summed over partitions; minutes without
// any are left out.
func sumSizes(parts [][]sizePart, from, to time.Time) []sizePoint {
	// Per partition, its points in time order (instances may both hold
	// a point of a partition that moved; they agree but for a minute).
	byPart := map[int32]map[int64]uint64{}
	for _, ps := range parts {
		for _, p := range ps {
			if byPart[p.Partition] == nil {
				byPart[p.Partition] = map[int64]uint64{}
			}
			byPart[p.Partition][p.TS] = max(byPart[p.Partition][p.TS], p.Members)
		}
	}
	type series struct {
		ts []int64
		n  []uint64
		i  int
	}
	all := make([]*series, 0, len(byPart))
	for _, m := range byPart {
		s := &series{ts: slices.Sorted(maps.Keys(m))}
		for _, t := range s.ts {
			s.n = append(s.n, m[t])
		}
		all = append(all, s)
	}
	out := []sizePoint{}
	carry := sizeCarry.Milliseconds()
	start := from.Truncate(time.Minute)
	if start.Before(from) {
		start = start.Add(time.Minute)
	}
	for t := start.UnixMilli(); t <= to.UnixMilli(); t += time.Minute.Milliseconds() {
		var sum uint64
		found := false
		for _, s := range all {
			for s.i+1 < len(s.ts) && s.ts[s.i+1] <= t {
				s.i++
			}
			if s.i < len(s.ts) && s.ts[s.i] <= t && t-s.ts[s.i] < carry {
				sum += s.n[s.i]
				found = true
			}
		}
		if found {
			out = append(out, sizePoint{TS: time.UnixMilli(t).UTC().Format(time.RFC3339), Members: sum})
		}
	}
	return out
}

// localSizes answers the size part of a partial request: every point this
// instance recorded for the group, whatever partitions it owns now.
func (a *API) localSizes(spot string, req *partialRequest) ([]sizePart, error) {
	out := []sizePart{}
	if a.cfg.Sizes == nil {
		return out, nil
	}
	err := a.cfg.Sizes.ReadSizes(spot, req.Group, req.From, req.To, func(p state.SizePoint) {
		out = append(out, sizePart{Partition: p.Partition, TS: p.TS, Members: p.Members})
	})
	return out, err
}
