package httpapi_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type resource struct {
	ID     string   `json:"id"`
	Type   string   `json:"type"`
	Title  string   `json:"title"`
	Groups []string `json:"groups"`
}

func res(id, typ, title string) map[string]string {
	return map[string]string{"id": id, "type": typ, "title": title}
}

// TestAPIResources drives the linked-resource endpoints through a real
// serve instance: resources on create and PATCH (validated), the group's
// resources searched, filtered and paged, a member's resources with the
// groups giving them, explain, and the access counts of a dry run.
func TestAPIResources(t *testing.T) {
	cfg := testConfig(t)
	in := start(t, cfg)
	c := newClient(t, in, adminToken).as(acmeToken)
	p := newProducer(t, in, cfg.Kafka.TopicPrefix)
	waitServing(t, c)

	live, course, forum := res("live-1", "live", "Weekly AMA"), res("course-1", "course", "Go basics"), res("forum-1", "forum", "Ask me anything")
	c.must(201, "POST", "/v1/spots/acme/groups", map[string]any{"id": "st", "type": "static", "name": "Staff",
		"resources": []any{live, forum}}, nil)
	c.must(201, "POST", "/v1/spots/acme/groups", map[string]any{"id": "vip", "type": "smart", "name": "VIPs",
		"rule": rawRule(ruleVIP), "resources": []any{course, live}}, nil)
	e := c.fail(400, "invalid_field", "POST", "/v1/spots/acme/groups", map[string]any{"id": "bad", "type": "static", "name": "Bad",
		"resources": []any{live, res("live-1", "course", "again")}})
	require.Contains(t, e.Message, "listed twice")
	c.fail(400, "invalid_field", "PATCH", "/v1/spots/acme/groups/st", map[string]any{"resources": []any{res("x", "webinar", "X")}})
	c.fail(400, "invalid_request", "PATCH", "/v1/spots/acme/groups/st", map[string]any{"resources": "live-1"})

	// The group's resources: id order, search by title, filter by type, pages.
	var page list[resource]
	c.must(200, "GET", "/v1/spots/acme/groups/vip/resources", nil, &page)
	require.Equal(t, []resource{{ID: "course-1", Type: "course", Title: "Go basics"}, {ID: "live-1", Type: "live", Title: "Weekly AMA"}}, page.Items)
	require.Empty(t, page.NextCursor)
	c.must(200, "GET", "/v1/spots/acme/groups/st/resources?q=ANY", nil, &page)
	require.Equal(t, []resource{{ID: "forum-1", Type: "forum", Title: "Ask me anything"}}, page.Items)
	c.must(200, "GET", "/v1/spots/acme/groups/st/resources?type=live", nil, &page)
	require.Equal(t, []resource{{ID: "live-1", Type: "live", Title: "Weekly AMA"}}, page.Items)
	c.must(200, "GET", "/v1/spots/acme/groups/st/resources?limit=1", nil, &page)
	require.Equal(t, "forum-1", page.Items[0].ID)
	require.NotEmpty(t, page.NextCursor)
	c.must(200, "GET", "/v1/spots/acme/groups/st/resources?limit=1&cursor="+page.NextCursor, nil, &page)
	require.Equal(t, "live-1", page.Items[0].ID)
	require.Empty(t, page.NextCursor)
	c.fail(400, "invalid_request", "GET", "/v1/spots/acme/groups/st/resources?type=webinar", nil)
	c.fail(404, "group_not_found", "GET", "/v1/spots/acme/groups/nope/resources", nil)

	// u1 is in both groups, u2 in vip only, u3 in st only.
	p.member("u1", map[string]any{"status": "accepted", "tags": []string{"vip"}, "static_groups": []string{"st"}})
	p.member("u2", map[string]any{"status": "accepted", "tags": []string{"vip"}})
	p.member("u3", map[string]any{"status": "accepted", "static_groups": []string{"st"}})
	var mine list[resource]
	eventually(t, "u3's access", 30*time.Second, func() bool {
		return c.do("GET", "/v1/spots/acme/members/u3/resources", nil).status == 200
	})
	c.must(200, "GET", "/v1/spots/acme/members/u1/resources", nil, &mine)
	require.Equal(t, []resource{
		{ID: "course-1", Type: "course", Title: "Go basics", Groups: []string{"vip"}},
		{ID: "forum-1", Type: "forum", Title: "Ask me anything", Groups: []string{"st"}},
		{ID: "live-1", Type: "live", Title: "Weekly AMA", Groups: []string{"st", "vip"}},
	}, mine.Items)
	c.fail(404, "member_not_found", "GET", "/v1/spots/acme/members/nobody/resources", nil)

	// Explain shows the group's resources.
	var x struct {
		InGroup   bool       `json:"in_group"`
		Resources []resource `json:"resources"`
	}
	c.must(200, "GET", "/v1/spots/acme/groups/vip/explain/u2", nil, &x)
	require.True(t, x.InGroup)
	require.Len(t, x.Resources, 2)

	// A dry run of dropping live-1 from vip: u2 would lose it, u1 keeps it
	// through st; a new channel would go to both vip members.
	var diff struct {
		Added  []string                  `json:"added"`
		Access map[string]map[string]int `json:"access"`
	}
	c.must(200, "PATCH", "/v1/spots/acme/groups/vip?dry_run=true",
		map[string]any{"resources": []any{course, res("chan-1", "channel", "Lounge")}}, &diff)
	require.Equal(t, map[string]map[string]int{"live-1": {"granted": 0, "revoked": 1}, "chan-1": {"granted": 2, "revoked": 0}}, diff.Access)
	// A rule change: everyone eligible joins (u3), u3 gets course-1 (live-1
	// it has through st).
	diff.Access = nil
	c.must(200, "PATCH", "/v1/spots/acme/groups/vip?dry_run=true", map[string]any{"rule": rawRule(`{"all":[]}`)}, &diff)
	require.Equal(t, []string{"u3"}, diff.Added)
	require.Equal(t, map[string]map[string]int{"course-1": {"granted": 1, "revoked": 0}}, diff.Access)

	// Applying the resource change updates u2's resources.
	c.must(200, "PATCH", "/v1/spots/acme/groups/vip", map[string]any{"resources": []any{course, res("chan-1", "channel", "Lounge")}}, nil)
	eventually(t, "u2 loses live-1", 30*time.Second, func() bool {
		c.must(200, "GET", "/v1/spots/acme/members/u2/resources", nil, &mine)
		return len(mine.Items) == 2 && mine.Items[0].ID == "chan-1" && mine.Items[1].ID == "course-1"
	})
	c.must(200, "PATCH", "/v1/spots/acme/groups/vip", map[string]any{"resources": nil}, nil)
	c.must(200, "GET", "/v1/spots/acme/groups/vip/resources", nil, &page)
	require.Empty(t, page.Items)
}
