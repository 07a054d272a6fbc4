package httpapi_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/smartgroups/smartgroups/engine"
)

type historyEntry struct {
	Group  string          `json:"group"`
	Op     string          `json:"op"`
	TS     string          `json:"ts"`
	Reason string          `json:"reason"`
	Seq    uint64          `json:"seq"`
	Cause  json.RawMessage `json:"cause"`
}

type memberInfo struct {
	Member string `json:"member"`
	Groups []struct {
		Group string `json:"group"`
		Seq   uint64 `json:"seq"`
		Since string `json:"since"`
	} `json:"groups"`
	Activities struct {
		Total int `json:"total"`
	} `json:"activities"`
	History []historyEntry `json:"history"`
}

// TestMemberHistoryEndToEnd follows one member of a serve instance (event
// clock) through an input record, time passing, a rule change, a
// blacklist entry and erasure, reading its history, its explanation and
// the member endpoint over HTTP; every exchange is validated against the
// OpenAPI document.
func TestMemberHistoryEndToEnd(t *testing.T) {
	cfg := testConfig(t)
	cfg.Clock = engine.ClockEvent
	in := start(t, cfg)
	c := newClient(t, in, acmeToken)
	p := newProducer(t, in, cfg.Kafka.TopicPrefix)
	waitServing(t, c)

	profile := func(id, ts string, v map[string]any) {
		p.send("profiles", "acme/"+id, map[string]any{"spot": "acme", "member": id, "ts": ts, "profile": v})
	}
	history := func(id, query string) []historyEntry {
		var page list[historyEntry]
		c.must(200, "GET", "/v1/spots/acme/members/"+id+"/history"+query, nil, &page)
		return page.Items
	}
	inGroup := func(group, id string) bool {
		r := c.do("GET", "/v1/spots/acme/groups/"+group+"/explain/"+id, nil)
		var x struct {
			InGroup bool `json:"in_group"`
		}
		return r.status == 200 && json.Unmarshal(r.body, &x) == nil && x.InGroup
	}

	c.must(201, "POST", "/v1/spots/acme/groups", map[string]any{"id": "vip", "type": "smart", "name": "VIP", "rule": rawRule(ruleVIP)}, nil)
	c.must(201, "POST", "/v1/spots/acme/groups", map[string]any{"id": "live", "type": "smart", "name": "Live",
		"rule": rawRule(`{"activity":"attended_live","when":{"within_last":{"days":1}}}`)}, nil)
	c.fail(404, "member_not_found", "GET", "/v1/spots/acme/members/h1", nil)
	c.fail(404, "member_not_found", "GET", "/v1/spots/acme/members/h1/history", nil)

	profile("h1", "2026-11-01T10:00:00Z", map[string]any{"status": "accepted", "tags": []string{"vip"}})
	p.send("activities", "acme/h1", map[string]any{"spot": "acme", "member": "h1", "ts": "2026-11-01T11:00:00Z", "id": "e1",
		"type": "attended_live", "resource": map[string]string{"id": "live-1"}})
	eventually(t, "h1 in live", 30*time.Second, func() bool { return inGroup("live", "h1") })
	var x struct {
		Since string `json:"since"`
	}
	c.must(200, "GET", "/v1/spots/acme/groups/live/explain/h1", nil, &x)
	require.Equal(t, "2026-11-01T11:00:00.000Z", x.Since)

	// Time: another member's record moves the event clock two days on.
	profile("h2", "2026-11-03T12:00:00Z", map[string]any{"status": "accepted"})
	eventually(t, "h1 out of live", 30*time.Second, func() bool { return !inGroup("live", "h1") })
	// A rule change and back, then a blacklist entry and its removal.
	c.must(200, "PATCH", "/v1/spots/acme/groups/vip", map[string]any{"rule": rawRule(`{"field":"profile.tags","op":"has_any","value":["gold"]}`)}, nil)
	c.must(200, "PATCH", "/v1/spots/acme/groups/vip", map[string]any{"rule": rawRule(ruleVIP)}, nil)
	c.must(201, "PUT", "/v1/spots/acme/groups/vip/blacklist/h1", nil, nil)
	c.must(204, "DELETE", "/v1/spots/acme/groups/vip/blacklist/h1", nil, nil)

	type row struct{ Group, Op, Reason, Cause string }
	var got []row
	for _, h := range history("h1", "") {
		var cause map[string]any
		require.NoError(t, json.Unmarshal(h.Cause, &cause))
		s := string(h.Cause)
		if topic, ok := cause["topic"].(string); ok {
			require.Contains(t, cause, "partition")
			require.Contains(t, cause, "offset")
			s = topic
		}
		got = append(got, row{h.Group, h.Op, h.Reason, s})
	}
	require.Equal(t, []row{
		{"vip", "add", "blacklist", `{"definition":"vip"}`},
		{"vip", "remove", "blacklist", `{"definition":"vip"}`},
		{"vip", "add", "definition", `{"definition":"vip"}`},
		{"vip", "remove", "definition", `{"definition":"vip"}`},
		{"live", "remove", "time", `{"timer":true}`},
		{"live", "add", "rule", "smartgroups.activities"},
		{"vip", "add", "eligibility", "smartgroups.profiles"},
	}, got)

	// One group, a page at a time.
	var page list[historyEntry]
	c.must(200, "GET", "/v1/spots/acme/members/h1/history?group=live&limit=1", nil, &page)
	require.Len(t, page.Items, 1)
	require.Equal(t, "remove", page.Items[0].Op)
	require.NotEmpty(t, page.NextCursor)
	c.must(200, "GET", "/v1/spots/acme/members/h1/history?group=live&limit=1&cursor="+page.NextCursor, nil, &page)
	require.Len(t, page.Items, 1)
	require.Equal(t, "add", page.Items[0].Op)
	require.Empty(t, page.NextCursor)
	c.fail(400, "invalid_cursor", "GET", "/v1/spots/acme/members/h1/history?cursor=nope", nil)
	c.fail(400, "invalid_request", "GET", "/v1/spots/acme/members/h1/history?limit=0", nil)

	var mi memberInfo
	c.must(200, "GET", "/v1/spots/acme/members/h1", nil, &mi)
	require.Equal(t, "h1", mi.Member)
	require.Len(t, mi.Groups, 1)
	require.Equal(t, "vip", mi.Groups[0].Group)
	require.Equal(t, uint64(5), mi.Groups[0].Seq)
	require.Equal(t, "2026-11-03T12:00:00.000Z", mi.Groups[0].Since)
	require.Equal(t, 1, mi.Activities.Total)
	require.Len(t, mi.History, 7)
	c.as(globexToken).fail(403, "forbidden", "GET", "/v1/spots/acme/members/h1", nil)
	c.as(globexToken).fail(403, "forbidden", "GET", "/v1/spots/acme/members/h1/history", nil)

	// Erasure deletes the history; a new profile starts a new one.
	require.NoError(t, p.cl.ProduceSync(context.Background(), &kgo.Record{Topic: cfg.Kafka.Topic("profiles"), Key: []byte("acme/h1")}).FirstErr())
	eventually(t, "h1 erased", 30*time.Second, func() bool {
		return c.do("GET", "/v1/spots/acme/members/h1/history", nil).status == 404
	})
	profile("h1", "2026-11-04T00:00:00Z", map[string]any{"status": "accepted"})
	eventually(t, "h1 back", 30*time.Second, func() bool { return c.do("GET", "/v1/spots/acme/members/h1", nil).status == 200 })
	require.Empty(t, history("h1", ""), "the history of the erased member is gone")
}
