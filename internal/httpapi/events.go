package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/smartgroups/smartgroups/engine"
)

// peerRefresh is how often a stream looks for instances it does not follow
// yet.
const peerRefresh = 2 * time.Second

// feedBuffer is how many events a subscriber may lag behind before the
// feed drops events for it (and tells it how many with a "gap" event).
const feedBuffer = 4096

// feedHeartbeat is how often an idle stream gets a comment line, so that
// proxies keep it open and a client notices a dead connection.
const feedHeartbeat = 15 * time.Second

// feed fans committed membership changes out to the subscribers of a spot.
type feed struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

type subscriber struct {
	spot, group string
	ch          chan engine.Event
	mu          sync.Mutex
	dropped     int
}

func newFeed() *feed { return &feed{subs: map[*subscriber]struct{}{}} }

func (f *feed) subscribe(spot, group string) *subscriber {
	s := &subscriber{spot: spot, group: group, ch: make(chan engine.Event, feedBuffer)}
	f.mu.Lock()
	f.subs[s] = struct{}{}
	f.mu.Unlock()
	return s
}

func (f *feed) unsubscribe(s *subscriber) {
	f.mu.Lock()
	delete(f.subs, s)
	f.mu.Unlock()
}

func (f *feed) publish(evs []engine.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.subs) == 0 {
		return
	}
	for s := range f.subs {
		for _, e := range evs {
			s.offer(e)
		}
	}
}

// offer queues an event of the subscriber's spot (and group), or counts
// it as dropped when the subscriber lags too far behind.
func (s *subscriber) offer(e engine.Event) {
	if e.Spot != s.spot || (s.group != "" && e.Group != s.group) {
		return
	}
	select {
	case s.ch <- e:
	default:
		s.mu.Lock()
		s.dropped++
		s.mu.Unlock()
	}
}

// takeDropped returns and resets the count of events dropped for s.
func (s *subscriber) takeDropped() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.dropped
	s.dropped = 0
	return n
}

// Publish hands the membership changes of a batch whose transaction
// committed to the subscribers of GET /v1/spots/{spot}/events. The runtime
// calls it after every publication; it never blocks (a subscriber that
// lags feedBuffer events behind loses events and is told how many).
func (a *API) Publish(evs []engine.Event) { a.feed.publish(evs) }

// events answers GET /v1/spots/{spot}/events: a server-sent event stream of
// the spot's membership changes as they are committed, optionally of one
// group. Each change is an event "membership" whose data is the SPEC §4.2
// record; "gap" tells how many changes were dropped because the client
// read too slowly. The stream carries this instance's changes and follows
// the other instances owning partitions (their streams with scope=local),
// so one stream has the changes of every partition; scope=local keeps to
// this instance's.
func (a *API) events(w http.ResponseWriter, r *http.Request, _ principal) *apiError {
	spot, group := r.PathValue("spot"), r.URL.Query().Get("group")
	scope := r.URL.Query().Get("scope")
	if scope != "" && scope != "local" && scope != "all" {
		return errorf(http.StatusBadRequest, CodeInvalidRequest, "scope must be local or all, not %q", scope)
	}
	if group != "" {
		if _, ok := a.lookupGroup(spot, group); !ok {
			return errorf(http.StatusNotFound, CodeGroupNotFound, "group %q does not exist in spot %q", group, spot)
		}
	}
	rc := http.NewResponseController(w)
	sub := a.feed.subscribe(spot, group)
	defer a.feed.unsubscribe(sub)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, "retry: 2000\n: membership changes of spot "+spot+"\n\n"); err != nil {
		return nil
	}
	_ = rc.Flush()
	beat := time.NewTicker(feedHeartbeat)
	defer beat.Stop()
	ctx := r.Context()
	if scope != "local" && a.cfg.Peers != nil {
		pctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		defer func() {
			stop()
			wg.Wait()
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.followPeers(pctx, r.Header.Get("Authorization"), spot, group, sub)
		}()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-beat.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return nil
			}
		case e := <-sub.ch:
			if n := sub.takeDropped(); n > 0 {
				if _, err := fmt.Fprintf(w, "event: gap\ndata: {\"dropped\":%d}\n\n", n); err != nil {
					return nil
				}
			}
			b, _ := json.Marshal(e)
			if _, err := fmt.Fprintf(w, "event: membership\ndata: %s\n\n", b); err != nil {
				return nil
			}
			// Write what else is queued before flushing.
			for drained := false; !drained; {
				select {
				case e := <-sub.ch:
					b, _ := json.Marshal(e)
					if _, err := fmt.Fprintf(w, "event: membership\ndata: %s\n\n", b); err != nil {
						return nil
					}
				default:
					drained = true
				}
			}
		}
		if err := rc.Flush(); err != nil {
			return nil
		}
	}
}

// followPeers streams the changes of the other instances owning partitions
// into sub until ctx is done, looking for new ones every peerRefresh.
func (a *API) followPeers(ctx context.Context, auth, spot, group string, sub *subscriber) {
	var mu sync.Mutex
	following := map[string]bool{}
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(peerRefresh)
	defer t.Stop()
	for {
		owners, err := a.cfg.Peers.Owners(ctx, false)
		if err == nil {
			for _, addr := range owners {
				mu.Lock()
				start := addr != a.cfg.Self && !following[addr]
				if start {
					following[addr] = true
				}
				mu.Unlock()
				if !start {
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					a.followPeer(ctx, addr, auth, spot, group, sub)
					mu.Lock()
					delete(following, addr) // found again at the next refresh
					mu.Unlock()
				}()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// followPeer reads one instance's local stream until it ends.
func (a *API) followPeer(ctx context.Context, addr, auth, spot, group string, sub *subscriber) {
	u := "http://" + addr + "/v1/spots/" + url.PathEscape(spot) + "/events?scope=local"
	if group != "" {
		u += "&group=" + url.QueryEscape(group)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := a.client.Do(req)
	if err != nil {
		return
	}
	defer func() { _ = res.Body.Close() }()
	if res.StatusCode != http.StatusOK {
		a.cfg.Logger.Warn("following the membership changes of another instance", "peer", addr, "status", res.Status)
		return
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	name := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			name = ""
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && name == "membership":
			var e engine.Event
			if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &e) == nil {
				sub.offer(e)
			}
		case strings.HasPrefix(line, "data: ") && name == "gap":
			var g struct {
				Dropped int `json:"dropped"`
			}
			if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &g) == nil {
				sub.mu.Lock()
				sub.dropped += g.Dropped
				sub.mu.Unlock()
			}
		}
	}
}
