package demo

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestMembersGroupHasMembersAtOnce: the group the banner links to has
// members in every spot as soon as the initial load (definitions, then one
// profile and one properties record per member) is applied, before any
// live record, for the demo's default community and for smaller ones.
func TestMembersGroupHasMembersAtOnce(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	cfgs := []Config{DefaultConfig()}
	for seed := uint64(1); seed <= 3; seed++ {
		cfgs = append(cfgs, Config{Spots: []string{"acme", "globex"}, Members: 200, Seed: seed})
	}
	for _, cfg := range cfgs {
		t.Run(fmt.Sprintf("members=%d/seed=%d", cfg.Members, cfg.Seed), func(t *testing.T) {
			g := New(cfg)
			smart := smartGroups(t, g)
			adds, _ := addsPerGroup(t, append(g.Definitions(), g.Members(now)...), now)
			for _, spot := range cfg.Spots {
				key := spot + "/" + MembersGroup
				if !slices.Contains(smart, key) {
					t.Fatalf("%s is not a smart group of the demo", key)
				}
				if adds[key] == 0 {
					t.Errorf("%s has no member after the initial load", key)
				}
			}
		})
	}
}

func TestBanner(t *testing.T) {
	b := Banner{HTTPAddr: "127.0.0.1:8080", Broker: "127.0.0.1:9092", TopicPrefix: "smartgroups.", Spot: "acme"}
	curlLines := func(s string) []string {
		var out []string
		for _, l := range strings.Split(s, "\n") {
			if strings.Contains(l, "curl ") {
				out = append(out, l)
			}
		}
		return out
	}

	open := b.String()
	if first := strings.Split(strings.TrimSpace(open), "\n")[1]; !strings.Contains(first, "console:     http://127.0.0.1:8080/ ") {
		t.Errorf("the banner's first URL is not the console's: %q", first)
	}
	for _, want := range []string{
		"curl http://127.0.0.1:8080/v1/spots/acme/groups\n",
		"curl http://127.0.0.1:8080/v1/spots/acme/groups/" + MembersGroup + "/members\n",
		"curl http://127.0.0.1:8080/v1/openapi.yaml\n",
		"kcat -b 127.0.0.1:9092 -C -t smartgroups.memberships -X isolation.level=read_committed -f '%k %s\\n'\n",
	} {
		if !strings.Contains(open, want) {
			t.Errorf("banner without a token lacks %q:\n%s", want, open)
		}
	}
	if strings.Contains(open, "Authorization") {
		t.Errorf("banner without a token prints an Authorization header:\n%s", open)
	}

	for token, header := range map[string]string{
		"admin-token-0123456789": `-H "Authorization: Bearer admin-token-0123456789" `,
		`it's$a"token`:           `-H 'Authorization: Bearer it'\''s$a"token' `,
	} {
		b.Token = token
		s := b.String()
		lines := curlLines(s)
		if len(lines) != 3 {
			t.Fatalf("banner has %d curl commands, want 3:\n%s", len(lines), s)
		}
		for _, l := range lines {
			if !strings.Contains(l, "curl "+header+"http://") {
				t.Errorf("curl command without %q: %q", header, l)
			}
		}
	}
}
