package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/smartgroups/smartgroups/engine"
)

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
			if e.Spot != s.spot || (s.group != "" && e.Group != s.group) {
				continue
			}
			select {
			case s.ch <- e:
			default:
				s.mu.Lock()
				s.dropped++
				s.mu.Unlock()
			}
		}
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
// the spot's membership changes as this instance commits them (the
// partitions it owns), optionally of one group. Each change is an event
// "membership" whose data is the SPEC §4.2 record; "gap" tells how many
// changes were dropped because the client read too slowly.
func (a *API) events(w http.ResponseWriter, r *http.Request, _ principal) *apiError {
	spot, group := r.PathValue("spot"), r.URL.Query().Get("group")
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
