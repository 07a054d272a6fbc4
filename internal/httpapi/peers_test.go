package httpapi_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/smartgroups/smartgroups/internal/httpapi"
)

// assignment returns, per advertised HTTP address, the profiles partitions
// the consumer group assigned to that instance.
func assignment(t *testing.T, brokers []string, group, topic string) map[string][]int32 {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	require.NoError(t, err)
	defer cl.Close()
	peers := httpapi.NewGroupPeers(kadm.NewClient(cl), group, topic)
	owners, err := peers.Owners(context.Background(), true)
	if err != nil {
		return nil
	}
	out := map[string][]int32{}
	for p, addr := range owners {
		out[addr] = append(out[addr], p)
	}
	return out
}

type genMember struct {
	id, first, last, status string
	vip                     bool
	plan                    string
}

func (m genMember) key() string {
	return strings.ToLower(m.first) + "\x00" + strings.ToLower(m.last) + "\x00" + m.id
}

// TestAPITwoInstances runs two instances sharing the member partitions of
// one broker. Each holds the state of its own partition only; reads that
// need every partition are gathered from both, so either instance answers
// members and preview queries exactly like a single instance owning
// everything (checked against the expected sets, and against the survivor
// once the other instance stops). Explain and a member's groups route to
// the member's partition; a write on one instance is seen by reads on the
// other at once.
func TestAPITwoInstances(t *testing.T) {
	cfgA := testConfig(t)
	a := start(t, cfgA)
	ca := newClient(t, a, adminToken)
	waitServing(t, ca)
	p := newProducer(t, a, cfgA.Kafka.TopicPrefix)

	ca.must(201, "PUT", "/v1/spots/acme/properties/plan", map[string]any{"label": "Plan", "type": "single_select",
		"options": []map[string]string{{"id": "free", "label": "Free"}, {"id": "pro", "label": "Pro"}}}, nil)
	ca.must(201, "POST", "/v1/spots/acme/groups", map[string]any{"id": "vip", "type": "smart", "name": "VIP", "rule": rawRule(ruleVIP)}, nil)

	r := rand.New(rand.NewPCG(7, 7))
	firsts := []string{"Ada", "ada", "Alan", "Grace", "Émile", "Zoe", ""}
	lasts := []string{"Lovelace", "Turing", "hopper", "Borel", ""}
	statuses := []string{"accepted", "accepted", "invited", "pending", "deactivated"}
	var gen []genMember
	partOf := kgo.StickyKeyPartitioner(nil).ForTopic(cfgA.Kafka.Topic("profiles"))
	perPart := map[int]int{}
	for i := 0; i < 120; i++ {
		m := genMember{id: fmt.Sprintf("m%03d", i), first: firsts[r.IntN(len(firsts))], last: lasts[r.IntN(len(lasts))],
			status: statuses[r.IntN(len(statuses))], vip: r.IntN(2) == 0, plan: []string{"free", "pro"}[r.IntN(2)]}
		gen = append(gen, m)
		tags := []string{"x"}
		if m.vip {
			tags = append(tags, "vip")
		}
		p.member(m.id, map[string]any{"first_name": m.first, "last_name": m.last, "status": m.status, "tags": tags})
		p.custom(m.id, map[string]any{"plan": m.plan})
		perPart[partOf.Partition(&kgo.Record{Key: []byte("acme/" + m.id)}, 2)]++
	}
	require.Positive(t, perPart[0])
	require.Positive(t, perPart[1])
	expect := func(keep func(m genMember) bool) []string {
		var sel []genMember
		for _, m := range gen {
			if m.status != "deactivated" && keep(m) {
				sel = append(sel, m)
			}
		}
		sort.Slice(sel, func(i, j int) bool { return sel[i].key() < sel[j].key() })
		out := []string{}
		for _, m := range sel {
			out = append(out, m.id)
		}
		return out
	}
	wantVIP := expect(func(m genMember) bool { return m.vip })
	wantProPreview := expect(func(m genMember) bool { return m.plan == "pro" && m.status != "invited" })
	eventually(t, "the members loaded", 30*time.Second, func() bool {
		var pv preview
		ca.must(200, "POST", "/v1/spots/acme/groups/preview", map[string]any{"rule": rawRule(`{"field":"custom.plan","op":"in","value":["pro","free"]}`)}, &pv)
		return pv.Count == len(expect(func(genMember) bool { return true })) && memberCount(t, ca, "vip") == len(wantVIP)
	})

	// A second instance joins: the partitions are split between them.
	cfgB := testConfig(t)
	cfgB.Kafka.Brokers = a.ready.Brokers
	b := start(t, cfgB)
	cb := newClient(t, b, adminToken)
	var partB int32
	eventually(t, "one partition per instance", 60*time.Second, func() bool {
		as := assignment(t, a.ready.Brokers, cfgA.Kafka.GroupID, cfgA.Kafka.Topic("profiles"))
		if len(as[a.ready.HTTPAddr]) == 1 && len(as[b.ready.HTTPAddr]) == 1 {
			partB = as[b.ready.HTTPAddr][0]
			return true
		}
		return false
	})
	waitServing(t, ca)
	waitServing(t, cb)
	// Each instance really holds one partition only: A refuses to answer
	// for B's, which B answers.
	partial := map[string]any{"op": "counts", "partitions": []int32{partB}, "min_defs": 0}
	ca.fail(409, "not_owner", "POST", "/v1/internal/spots/acme/partial", partial)
	cb.must(200, "POST", "/v1/internal/spots/acme/partial", partial, nil)

	proRule := rawRule(`{"all":[{"field":"custom.plan","op":"in","value":["pro"]},{"not":{"field":"profile.status","op":"in","value":["invited"]}}]}`)
	type answers struct {
		vip, vipByPages, ada, invited []string
		preview                       preview
		count                         int
	}
	ask := func(c *client) answers {
		var x answers
		x.vip = c.allMembers("acme", "vip", "", 1000)
		x.vipByPages = c.allMembers("acme", "vip", "", 7)
		x.ada = c.allMembers("acme", "vip", "&q=ADA", 5)
		x.invited = c.allMembers("acme", "vip", "&status=invited", 5)
		c.must(200, "POST", "/v1/spots/acme/groups/preview", map[string]any{"rule": proRule, "limit": 10}, &x.preview)
		x.count = memberCount(t, c, "vip")
		return x
	}
	fromA, fromB := ask(ca), ask(cb)
	require.Equal(t, wantVIP, fromA.vip)
	require.Equal(t, wantVIP, fromA.vipByPages)
	require.Equal(t, len(wantVIP), fromA.count)
	require.Equal(t, len(wantProPreview), fromA.preview.Count)
	require.Equal(t, wantProPreview[:10], ids(fromA.preview.Members))
	require.Equal(t, expect(func(m genMember) bool { return m.vip && strings.Contains(strings.ToLower(m.first+" "+m.last), "ada") }), fromA.ada)
	require.Equal(t, expect(func(m genMember) bool { return m.vip && m.status == "invited" }), fromA.invited)
	require.Equal(t, fromA, fromB)

	// Explain and member groups route to the member's owner, from either
	// instance.
	for _, m := range gen[:10] {
		for _, c := range []*client{ca, cb} {
			var x struct {
				InGroup bool `json:"in_group"`
			}
			c.must(200, "GET", "/v1/spots/acme/groups/vip/explain/"+m.id, nil, &x)
			require.Equal(t, m.vip && m.status != "deactivated", x.InGroup, m.id)
			var mg list[map[string]string]
			c.must(200, "GET", "/v1/spots/acme/members/"+m.id+"/groups", nil, &mg)
			require.Equal(t, x.InGroup, len(mg.Items) == 1, m.id)
		}
		// The member and its history, from either instance, are the
		// owner's answer.
		ra := ca.must(200, "GET", "/v1/spots/acme/members/"+m.id, nil, nil)
		rb := cb.must(200, "GET", "/v1/spots/acme/members/"+m.id, nil, nil)
		require.JSONEq(t, string(ra.body), string(rb.body), m.id)
		ha := ca.must(200, "GET", "/v1/spots/acme/members/"+m.id+"/history", nil, nil)
		hb := cb.must(200, "GET", "/v1/spots/acme/members/"+m.id+"/history", nil, nil)
		require.JSONEq(t, string(ha.body), string(hb.body), m.id)
	}

	// Read-after-write across instances: a blacklist entry written on A is
	// seen by B's reads at once, wherever the member lives; a rule change
	// written on B by A's.
	for _, id := range []string{wantVIP[0], wantVIP[1], wantVIP[2]} {
		ca.must(201, "PUT", "/v1/spots/acme/groups/vip/blacklist/"+id, nil, nil)
		require.NotContains(t, cb.allMembers("acme", "vip", "", 1000), id)
		var x struct {
			Blacklisted bool `json:"blacklisted"`
		}
		cb.must(200, "GET", "/v1/spots/acme/groups/vip/explain/"+id, nil, &x)
		require.True(t, x.Blacklisted)
		cb.must(204, "DELETE", "/v1/spots/acme/groups/vip/blacklist/"+id, nil, nil)
		require.Contains(t, ca.allMembers("acme", "vip", "", 1000), id)
	}
	var g group
	cb.must(200, "PATCH", "/v1/spots/acme/groups/vip", map[string]any{"rule": proRule}, &g)
	require.Equal(t, len(wantProPreview), *g.MemberCount)
	require.Equal(t, wantProPreview, ca.allMembers("acme", "vip", "", 1000))
	ca.must(200, "PATCH", "/v1/spots/acme/groups/vip", map[string]any{"rule": rawRule(ruleVIP)}, nil)
	require.Equal(t, wantVIP, cb.allMembers("acme", "vip", "", 1000))

	// B stops: A owns everything again and answers exactly as both did.
	b.stop(t)
	eventually(t, "A to own both partitions", 60*time.Second, func() bool {
		as := assignment(t, a.ready.Brokers, cfgA.Kafka.GroupID, cfgA.Kafka.Topic("profiles"))
		return len(as[a.ready.HTTPAddr]) == 2
	})
	waitServing(t, ca)
	require.Equal(t, fromA, ask(ca))
}
