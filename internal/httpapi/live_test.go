package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestListSpots(t *testing.T) {
	in := start(t, testConfig(t))
	c := newClient(t, in, adminToken)
	c.must(201, "POST", "/v1/spots/acme/groups", map[string]any{"id": "a1", "type": "static", "name": "A"}, nil)
	c.must(201, "POST", "/v1/spots/globex/groups", map[string]any{"id": "g1", "type": "static", "name": "G"}, nil)
	type spots struct {
		Items []struct {
			ID     string `json:"id"`
			Groups int    `json:"groups"`
		} `json:"items"`
	}
	var all spots
	c.must(200, "GET", "/v1/spots", nil, &all)
	if len(all.Items) != 2 || all.Items[0].ID != "acme" || all.Items[1].ID != "globex" || all.Items[0].Groups != 1 {
		t.Fatalf("admin token sees %+v, want acme and globex with one group each", all.Items)
	}
	var one spots
	c.as(acmeToken).must(200, "GET", "/v1/spots", nil, &one)
	if len(one.Items) != 1 || one.Items[0].ID != "acme" {
		t.Fatalf("acme's token sees %+v, want acme only", one.Items)
	}
	c.as("wrong-token-0123456789").fail(401, "unauthorized", "GET", "/v1/spots", nil)
}

// sse reads server-sent events of one stream.
type sse struct {
	res *http.Response
	sc  *bufio.Scanner
}

func openEvents(t *testing.T, in *instance, token, path string) (*sse, int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+in.ready.HTTPAddr+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = res.Body.Close() })
	return &sse{res: res, sc: bufio.NewScanner(res.Body)}, res.StatusCode
}

// nextOrEnd returns the next event's name and data, or empty strings when
// the stream ended.
func (s *sse) nextOrEnd() (string, string) {
	name, data := "", ""
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case line == "" && data != "":
			return name, data
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		}
	}
	return "", ""
}

// next returns the next event's name and data.
func (s *sse) next(t *testing.T) (string, string) {
	t.Helper()
	name, data := "", ""
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case line == "" && data != "":
			return name, data
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		}
	}
	t.Fatalf("event stream ended: %v", s.sc.Err())
	return "", ""
}

func TestEventsStream(t *testing.T) {
	in := start(t, testConfig(t))
	c := newClient(t, in, adminToken)
	p := newProducer(t, in, "smartgroups.")
	c.must(201, "POST", "/v1/spots/acme/groups", map[string]any{"id": "vips", "type": "smart", "name": "VIPs",
		"rule": map[string]any{"field": "profile.tags", "op": "has_any", "value": []string{"vip"}}}, nil)

	if _, st := openEvents(t, in, globexToken, "/v1/spots/acme/events"); st != 403 {
		t.Fatalf("globex's token on acme's events: %d, want 403", st)
	}
	if _, st := openEvents(t, in, adminToken, "/v1/spots/acme/events?group=nope"); st != 404 {
		t.Fatalf("events of a group that does not exist: %d, want 404", st)
	}
	s, st := openEvents(t, in, acmeToken, "/v1/spots/acme/events?group=vips")
	if st != 200 || !strings.HasPrefix(s.res.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("events: %d %s", st, s.res.Header.Get("Content-Type"))
	}
	p.member("u1", map[string]any{"first_name": "Ada", "status": "accepted", "tags": []string{"vip"}})
	name, data := s.next(t)
	var e struct {
		Spot, Group, Member, Op, Reason string
		Seq                             int
	}
	if err := json.Unmarshal([]byte(data), &e); err != nil {
		t.Fatal(err)
	}
	if name != "membership" || e.Spot != "acme" || e.Group != "vips" || e.Member != "u1" || e.Op != "add" || e.Seq != 1 {
		t.Fatalf("first event: %s %s", name, data)
	}
	p.member("u1", map[string]any{"tags": []string{}})
	_, data = s.next(t)
	if err := json.Unmarshal([]byte(data), &e); err != nil {
		t.Fatal(err)
	}
	if e.Member != "u1" || e.Op != "remove" || e.Reason != "rule" || e.Seq != 2 {
		t.Fatalf("second event: %s", data)
	}
}

func TestGroupSizeSeries(t *testing.T) {
	cfg := testConfig(t)
	cfg.SizeInterval = 50 * time.Millisecond
	in := start(t, cfg)
	c := newClient(t, in, adminToken)
	p := newProducer(t, in, "smartgroups.")
	c.must(201, "POST", "/v1/spots/acme/groups", map[string]any{"id": "vips", "type": "smart", "name": "VIPs",
		"rule": map[string]any{"field": "profile.tags", "op": "has_any", "value": []string{"vip"}}}, nil)
	for _, m := range []string{"u1", "u2", "u3"} {
		p.member(m, map[string]any{"status": "accepted", "tags": []string{"vip"}})
	}
	type series struct {
		Points []struct {
			TS      string `json:"ts"`
			Members int    `json:"members"`
		} `json:"points"`
	}
	last := func() int {
		var s series
		c.must(200, "GET", "/v1/spots/acme/groups/vips/size", nil, &s)
		if len(s.Points) == 0 {
			return -1
		}
		return s.Points[len(s.Points)-1].Members
	}
	eventually(t, "the size series to show 3 members", 30*time.Second, func() bool { return last() == 3 })
	p.member("u2", map[string]any{"tags": []string{}})
	eventually(t, "the size series to show 2 members", 30*time.Second, func() bool { return last() == 2 })

	var s series
	c.must(200, "GET", "/v1/spots/acme/groups/vips/size?from=2026-01-01T00:00:00Z&to=2026-01-01T01:00:00Z", nil, &s)
	if len(s.Points) != 0 {
		t.Fatalf("a span before the group existed has points: %+v", s.Points)
	}
	c.fail(400, "invalid_request", "GET", "/v1/spots/acme/groups/vips/size?from=tomorrow", nil)
	c.fail(404, "group_not_found", "GET", "/v1/spots/acme/groups/nope/size", nil)
	c.as(globexToken).fail(403, "forbidden", "GET", "/v1/spots/acme/groups/vips/size", nil)
}

// TestLiveTwoInstances: with the partitions split between two instances,
// one event stream (on either) carries the changes of both partitions, and
// the size series of either sums both partitions.
func TestLiveTwoInstances(t *testing.T) {
	cfgA := testConfig(t)
	cfgA.SizeInterval = 50 * time.Millisecond
	a := start(t, cfgA)
	ca := newClient(t, a, adminToken)
	waitServing(t, ca)
	cfgB := testConfig(t)
	cfgB.SizeInterval = 50 * time.Millisecond
	cfgB.Kafka.Brokers = a.ready.Brokers
	b := start(t, cfgB)
	cb := newClient(t, b, adminToken)
	eventually(t, "one partition per instance", 60*time.Second, func() bool {
		as := assignment(t, a.ready.Brokers, cfgA.Kafka.GroupID, cfgA.Kafka.Topic("profiles"))
		return len(as[a.ready.HTTPAddr]) == 1 && len(as[b.ready.HTTPAddr]) == 1
	})
	waitServing(t, ca)
	waitServing(t, cb)
	ca.must(201, "POST", "/v1/spots/acme/groups", map[string]any{"id": "vips", "type": "smart", "name": "VIPs",
		"rule": map[string]any{"field": "profile.tags", "op": "has_any", "value": []string{"vip"}}}, nil)

	s, st := openEvents(t, a, adminToken, "/v1/spots/acme/events?group=vips")
	if st != 200 {
		t.Fatalf("events: %d", st)
	}
	// New members join in both partitions until A's stream has shown a
	// member of each (it starts following B within a refresh).
	partOf := kgo.StickyKeyPartitioner(nil).ForTopic(cfgA.Kafka.Topic("profiles"))
	part := func(id string) int { return partOf.Partition(&kgo.Record{Key: []byte("acme/" + id)}, 2) }
	p := newProducer(t, a, "smartgroups.")
	events := make(chan string, 100)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			_, data := s.nextOrEnd()
			if data == "" {
				close(events)
				return
			}
			var e struct{ Member, Op string }
			if json.Unmarshal([]byte(data), &e) == nil && e.Op == "add" {
				select {
				case events <- e.Member:
				case <-done:
					return
				}
			}
		}
	}()
	seen := map[int]bool{}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for i := 0; !seen[0] || !seen[1]; {
		select {
		case m, ok := <-events:
			if !ok {
				t.Fatal("the event stream ended")
			}
			seen[part(m)] = true
		case <-tick.C:
			for _, want := range []int{0, 1} {
				for ; ; i++ {
					if id := fmt.Sprintf("u%d", i); part(id) == want {
						p.member(id, map[string]any{"status": "accepted", "tags": []string{"vip"}})
						i++
						break
					}
				}
			}
		}
	}

	// The size series sums the partitions of both instances.
	for _, c := range []*client{ca, cb} {
		eventually(t, "the size series to count both partitions", 30*time.Second, func() bool {
			var s struct {
				Points []struct {
					Members int `json:"members"`
				} `json:"points"`
			}
			c.must(200, "GET", "/v1/spots/acme/groups/vips/size", nil, &s)
			return len(s.Points) > 0 && s.Points[len(s.Points)-1].Members == memberCount(t, c, "vips")
		})
	}
}
