package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/smartgroups/smartgroups/engine"
)

// Peers finds the instances that own member partitions.
type Peers interface {
	// Owners returns the advertised HTTP address of the owner of every
	// partition it knows an owner of. refresh bypasses any cache.
	Owners(ctx context.Context, refresh bool) (map[int32]string, error)
}

// PeerClientID returns the Kafka client id prefix that advertises an
// instance's HTTP address to the others: "<prefix>@<host:port>". The
// consumer group member's client id starts with it.
func PeerClientID(prefix, addr string) string { return prefix + "@" + addr }

// AddrFromClientID extracts the HTTP address from a group member's client
// id made from PeerClientID (the runtime appends a suffix such as
// "-consumer" after the port).
func AddrFromClientID(id string) (string, bool) {
	at := strings.LastIndexByte(id, '@')
	if at < 0 {
		return "", false
	}
	rest := id[at+1:]
	colon := strings.LastIndexByte(rest, ':')
	if colon <= 0 {
		return "", false
	}
	end := colon + 1
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	if end == colon+1 {
		return "", false
	}
	return rest[:end], true
}

// GroupPeers discovers the owners of the member partitions from the
// consumer group: kadm.DescribeGroups lists every member with its client
// id (which advertises its HTTP address, see PeerClientID) and its
// assigned partitions of the profiles topic. Answers are cached for a
// second; a failed scatter-gather refreshes them.
type GroupPeers struct {
	adm   *kadm.Client
	group string
	topic string
	ttl   time.Duration

	mu     sync.Mutex
	owners map[int32]string
	at     time.Time
}

var _ Peers = (*GroupPeers)(nil)

// NewGroupPeers returns the peers of consumer group `group`, reading
// assignments of `topic` (the profiles topic; member topics are
// co-partitioned).
func NewGroupPeers(adm *kadm.Client, group, topic string) *GroupPeers {
	return &GroupPeers{adm: adm, group: group, topic: topic, ttl: time.Second}
}

// Owners implements Peers.
func (g *GroupPeers) Owners(ctx context.Context, refresh bool) (map[int32]string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !refresh && g.owners != nil && time.Since(g.at) < g.ttl {
		return g.owners, nil
	}
	described, err := g.adm.DescribeGroups(ctx, g.group)
	if err != nil {
		return nil, fmt.Errorf("httpapi: describing consumer group %s: %w", g.group, err)
	}
	dg, ok := described[g.group]
	if !ok {
		return nil, fmt.Errorf("httpapi: consumer group %s not described", g.group)
	}
	if dg.Err != nil {
		return nil, fmt.Errorf("httpapi: describing consumer group %s: %w", g.group, dg.Err)
	}
	owners := map[int32]string{}
	for _, m := range dg.Members {
		addr, ok := AddrFromClientID(m.ClientID)
		if !ok {
			continue
		}
		c, ok := m.Assigned.AsConsumer()
		if !ok {
			continue
		}
		for _, t := range c.Topics {
			if t.Topic != g.topic {
				continue
			}
			for _, p := range t.Partitions {
				owners[p] = addr
			}
		}
	}
	g.owners, g.at = owners, time.Now()
	return owners, nil
}

// Partial-query operations of the internal endpoint.
const (
	opMembers      = "members"
	opDiff         = "diff"
	opCounts       = "counts"
	opExplain      = "explain"
	opMemberGroups = "member_groups"
	// opAccessDiff: per resource, the access a group change would grant
	// and revoke; opMemberResources: a member's resources.
	opAccessDiff      = "access_diff"
	opMemberResources = "member_resources"
	// opSize: the size points an instance recorded for a group.
	opSize = "size"
	// opMember: everything about a member; opHistory: a page of its
	// membership history.
	opMember  = "member"
	opHistory = "history"
)

type filter struct {
	Query    string   `json:"q,omitempty"`
	Roles    []string `json:"roles,omitempty"`
	Statuses []string `json:"statuses,omitempty"`
}

// partialRequest is the body of POST /v1/internal/spots/{spot}/partial:
// a read to answer for some partitions, once the instance's definitions
// reach MinDefs (so a read after a write sees the write everywhere).
type partialRequest struct {
	Op          string          `json:"op"`
	Partitions  []int32         `json:"partitions"`
	MinDefs     int64           `json:"min_defs"`
	Group       string          `json:"group,omitempty"`
	StaticGroup string          `json:"static_group,omitempty"`
	Member      string          `json:"member,omitempty"`
	Rule        json.RawMessage `json:"rule,omitempty"`
	Blacklist   string          `json:"blacklist,omitempty"`
	Filter      *filter         `json:"filter,omitempty"`
	After       *engine.SortKey `json:"after,omitempty"`
	Limit       int             `json:"limit"`
	// Resources is the new resource list of an access_diff.
	Resources []engine.Resource `json:"resources,omitempty"`
	// From and To bound a size request (epoch milliseconds).
	From int64 `json:"from,omitempty"`
	To   int64 `json:"to,omitempty"`
	// Before is where a history page starts (engine.HistoryPage.Next).
	Before uint64 `json:"before,omitempty"`
}

// partial is the internal endpoint answering a partialRequest for
// partitions this instance owns (409 not_owner otherwise).
func (a *API) partial(w http.ResponseWriter, r *http.Request, _ principal) *apiError {
	spot := r.PathValue("spot")
	var req partialRequest
	if e := decodeBody(r, &req); e != nil {
		return e
	}
	for _, p := range req.Partitions {
		if p < 0 || p >= a.cfg.Partitions {
			return errorf(http.StatusBadRequest, CodeInvalidRequest, "partition %d does not exist (0 to %d)", p, a.cfg.Partitions-1)
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.PeerTimeout/2)
	defer cancel()
	if err := a.tracker.wait(ctx, req.MinDefs); err != nil {
		return errorf(http.StatusServiceUnavailable, CodeNotApplied, "definitions up to offset %d are not applied here yet", req.MinDefs)
	}
	v, err := a.answer(r.Context(), spot, &req)
	if err != nil {
		return fromEngineError(err)
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// answer runs a partial query on the local engine.
func (a *API) answer(ctx context.Context, spot string, req *partialRequest) (any, error) {
	switch req.Op {
	case opMembers:
		q := engine.MemberQuery{Spot: spot, Group: req.Group, StaticGroup: req.StaticGroup, Rule: req.Rule,
			Blacklist: req.Blacklist, After: req.After, Limit: req.Limit}
		if req.Filter != nil {
			q.Filter = engine.MemberFilter{Query: req.Filter.Query, Roles: req.Filter.Roles, Statuses: req.Filter.Statuses}
		}
		return a.eng.QueryMembers(ctx, req.Partitions, q)
	case opDiff:
		return a.eng.DiffRule(ctx, req.Partitions, spot, req.Group, req.Rule, req.Limit)
	case opCounts:
		return a.eng.GroupCounts(req.Partitions, spot)
	case opSize:
		return a.localSizes(spot, req)
	case opAccessDiff:
		return a.eng.DiffAccess(ctx, req.Partitions, spot, req.Group, req.Rule, req.Resources)
	case opExplain, opMemberGroups, opMemberResources, opMember, opHistory:
		if len(req.Partitions) != 1 || req.Partitions[0] != a.eng.PartitionOf(spot, req.Member) {
			return nil, errorf(http.StatusBadRequest, CodeInvalidRequest, "member %q is in partition %d", req.Member, a.eng.PartitionOf(spot, req.Member))
		}
		if req.Op == opExplain {
			return a.eng.ExplainMember(spot, req.Group, req.Member)
		}
		if req.Op == opMemberResources {
			return a.eng.MemberResources(spot, req.Member)
		}
		if req.Op == opMember {
			return a.eng.MemberInfo(spot, req.Member)
		}
		if req.Op == opHistory {
			return a.eng.MemberHistory(spot, req.Member, req.Group, req.Before, max(req.Limit, 1))
		}
		return a.eng.MemberGroups(spot, req.Member)
	}
	return nil, errorf(http.StatusBadRequest, CodeInvalidRequest, "unknown op %q", req.Op)
}

// plan assigns partitions to this instance (those its engine owns) or to
// the peer the consumer group assigned them to.
func (a *API) plan(ctx context.Context, parts []int32, refresh bool) (local []int32, remote map[string][]int32, missing []int32, err error) {
	owned := map[int32]bool{}
	for _, p := range a.eng.Owned() {
		owned[p] = true
	}
	var owners map[int32]string
	for _, p := range parts {
		if owned[p] {
			local = append(local, p)
			continue
		}
		if owners == nil && a.cfg.Peers != nil {
			if owners, err = a.cfg.Peers.Owners(ctx, refresh); err != nil {
				return nil, nil, nil, err
			}
		}
		if addr := owners[p]; addr != "" && addr != a.cfg.Self {
			if remote == nil {
				remote = map[string][]int32{}
			}
			remote[addr] = append(remote[addr], p)
			continue
		}
		missing = append(missing, p)
	}
	return local, remote, missing, nil
}

func (a *API) allPartitions() []int32 {
	out := make([]int32, a.cfg.Partitions)
	for i := range out {
		out[i] = int32(i)
	}
	return out
}

// retryBackoff are the pauses before each attempt of a scatter-gather: a
// rebalance moving partitions is waited out for about two seconds, then
// the read fails with 503 rather than answering for part of the spot.
var retryBackoff = []time.Duration{0, 250 * time.Millisecond, 750 * time.Millisecond, time.Second}

// gather runs req on every partition in parts, here for the partitions
// this engine owns and on their owners for the others, and returns one
// answer per instance. It never returns a partial answer: when some
// partition has no reachable owner after the retries, it fails with 503.
func gather[T any](a *API, r *http.Request, spot string, req partialRequest, parts []int32) ([]T, *apiError) {
	ctx := r.Context()
	req.MinDefs = max(req.MinDefs, a.tracker.position())
	var last *apiError
	for attempt, pause := range retryBackoff {
		if pause > 0 {
			select {
			case <-time.After(pause):
			case <-ctx.Done():
				return nil, errorf(http.StatusServiceUnavailable, CodeUnavailable, "request canceled: %v", ctx.Err())
			}
		}
		local, remote, missing, err := a.plan(ctx, parts, attempt > 0)
		if err != nil {
			last = errorf(http.StatusServiceUnavailable, CodeUnavailable, "finding the instances that own the partitions: %v", err)
			continue
		}
		if len(missing) > 0 {
			last = errorf(http.StatusServiceUnavailable, CodeUnavailable,
				"partitions %v have no reachable owner right now (a rebalance may be in progress); retry shortly", missing).with("partitions", missing)
			continue
		}
		out, e, retry := fanout[T](a, r, spot, req, local, remote)
		if e == nil {
			return out, nil
		}
		if !retry {
			return nil, e
		}
		last = e
	}
	return nil, last
}

func fanout[T any](a *API, r *http.Request, spot string, req partialRequest, local []int32, remote map[string][]int32) ([]T, *apiError, bool) {
	type result struct {
		v     T
		err   *apiError
		retry bool
	}
	results := make([]result, 0, len(remote)+1)
	var mu sync.Mutex
	var wg sync.WaitGroup
	add := func(res result) {
		mu.Lock()
		results = append(results, res)
		mu.Unlock()
	}
	for _, addr := range slices.Sorted(maps.Keys(remote)) {
		preq := req
		preq.Partitions = remote[addr]
		wg.Add(1)
		go func() {
			defer wg.Done()
			var v T
			e, retry := a.callPeer(r, addr, spot, &preq, &v)
			add(result{v: v, err: e, retry: retry})
		}()
	}
	if len(local) > 0 {
		lreq := req
		lreq.Partitions = local
		v, err := a.answer(r.Context(), spot, &lreq)
		if err != nil {
			e := fromEngineError(err)
			add(result{err: e, retry: e.Code == CodeNotOwner})
		} else {
			add(result{v: v.(T)})
		}
	}
	wg.Wait()
	out := make([]T, 0, len(results))
	var firstErr *apiError
	retry := true
	for _, res := range results {
		if res.err != nil {
			// A definitive error (404, 400) wins over retryable ones.
			if firstErr == nil || (retry && !res.retry) {
				firstErr, retry = res.err, res.retry
			}
			continue
		}
		out = append(out, res.v)
	}
	if firstErr != nil {
		return nil, firstErr, retry
	}
	return out, nil, false
}

// callPeer runs a partial request on a peer, forwarding the caller's
// token. It reports whether a failure is worth retrying (the peer is
// unreachable, not the owner any more, or not caught up).
func (a *API) callPeer(r *http.Request, addr, spot string, req *partialRequest, out any) (*apiError, bool) {
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.PeerTimeout)
	defer cancel()
	body, _ := json.Marshal(req)
	u := "http://" + addr + "/v1/internal/spots/" + url.PathEscape(spot) + "/partial"
	preq, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return errorf(http.StatusInternalServerError, CodeInternal, "%v", err), false
	}
	preq.Header.Set("Content-Type", "application/json")
	if h := r.Header.Get("Authorization"); h != "" {
		preq.Header.Set("Authorization", h)
	}
	resp, err := a.client.Do(preq)
	if err != nil {
		return errorf(http.StatusServiceUnavailable, CodeUnavailable, "instance %s owning partitions %v is unreachable: %v", addr, req.Partitions, err), true
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return errorf(http.StatusServiceUnavailable, CodeUnavailable, "reading the answer of instance %s: %v", addr, err), true
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, out); err != nil {
			return errorf(http.StatusBadGateway, CodeInternal, "instance %s answered %v", addr, err), false
		}
		return nil, false
	}
	var eb errorBody
	if err := json.Unmarshal(b, &eb); err != nil || eb.Error == nil {
		return errorf(http.StatusServiceUnavailable, CodeUnavailable, "instance %s answered %s", addr, resp.Status), resp.StatusCode >= 500
	}
	e := eb.Error
	e.Status = resp.StatusCode
	switch {
	case e.Code == CodeNotOwner, resp.StatusCode >= 500:
		return errorf(http.StatusServiceUnavailable, CodeUnavailable, "instance %s could not answer for partitions %v: %s", addr, req.Partitions, e.Message), true
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return errorf(http.StatusServiceUnavailable, CodeUnavailable,
			"instance %s refused this request's token: every instance must be configured with the same tokens", addr), false
	}
	return e, false
}

func (a *API) gatherMembers(r *http.Request, spot string, req partialRequest) (*engine.MemberPage, *apiError) {
	req.Op = opMembers
	pages, e := gather[*engine.MemberPage](a, r, spot, req, a.allPartitions())
	if e != nil {
		return nil, e
	}
	out := &engine.MemberPage{Members: []engine.MemberSummary{}}
	for _, p := range pages {
		out.Total += p.Total
		out.Remaining += p.Remaining
		out.Members = append(out.Members, p.Members...)
	}
	sort.Slice(out.Members, func(i, j int) bool { return out.Members[i].Key().Less(out.Members[j].Key()) })
	if len(out.Members) > req.Limit {
		out.Members = out.Members[:req.Limit]
	}
	return out, nil
}

func (a *API) gatherCounts(r *http.Request, spot string, minDefs int64) (map[string]int, *apiError) {
	parts, e := gather[map[string]int](a, r, spot, partialRequest{Op: opCounts, MinDefs: minDefs}, a.allPartitions())
	if e != nil {
		return nil, e
	}
	out := map[string]int{}
	for _, p := range parts {
		for g, n := range p {
			out[g] += n
		}
	}
	return out, nil
}

func (a *API) gatherDiff(r *http.Request, spot, group string, rule json.RawMessage, limit int) (*engine.RuleDiff, *apiError) {
	diffs, e := gather[*engine.RuleDiff](a, r, spot, partialRequest{Op: opDiff, Group: group, Rule: rule, Limit: limit}, a.allPartitions())
	if e != nil {
		return nil, e
	}
	out := &engine.RuleDiff{Added: []string{}, Removed: []string{}}
	for _, d := range diffs {
		out.AddedCount += d.AddedCount
		out.RemovedCount += d.RemovedCount
		out.Added = append(out.Added, d.Added...)
		out.Removed = append(out.Removed, d.Removed...)
	}
	slices.Sort(out.Added)
	slices.Sort(out.Removed)
	out.Added = out.Added[:min(limit, len(out.Added))]
	out.Removed = out.Removed[:min(limit, len(out.Removed))]
	return out, nil
}

func (a *API) gatherExplain(r *http.Request, spot, group, member string) (*engine.Explanation, *apiError) {
	p := a.eng.PartitionOf(spot, member)
	xs, e := gather[*engine.Explanation](a, r, spot, partialRequest{Op: opExplain, Group: group, Member: member}, []int32{p})
	if e != nil {
		return nil, e
	}
	if len(xs) != 1 {
		return nil, errorf(http.StatusInternalServerError, CodeInternal, "explain got %d answers", len(xs))
	}
	return xs[0], nil
}

func (a *API) gatherMemberGroups(r *http.Request, spot, member string) ([]string, *apiError) {
	p := a.eng.PartitionOf(spot, member)
	gs, e := gather[[]string](a, r, spot, partialRequest{Op: opMemberGroups, Member: member}, []int32{p})
	if e != nil {
		return nil, e
	}
	if len(gs) != 1 {
		return nil, errorf(http.StatusInternalServerError, CodeInternal, "member groups got %d answers", len(gs))
	}
	return gs[0], nil
}
