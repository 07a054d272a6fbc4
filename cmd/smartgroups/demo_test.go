package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smartgroups/smartgroups/internal/httpapi"
	"github.com/smartgroups/smartgroups/internal/serve"
)

// syncBuffer is a bytes.Buffer safe for one writer goroutine at a time and
// concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var bannerMembers = regexp.MustCompile(`members: +curl -H "Authorization: Bearer ([^"]+)" (http://\S+)\n`)

// TestDemoBanner runs the demo with its token from SMARTGROUPS_API_TOKEN:
// the banner's curl commands carry the token, and the members link it
// prints answers with members within seconds of the banner.
func TestDemoBanner(t *testing.T) {
	const token = "demo-token-0123456789"
	t.Setenv("SMARTGROUPS_API_TOKEN", token)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	root := newRootCmd()
	var out syncBuffer
	root.SetOut(&out)
	root.SetErr(io.Discard)
	root.SetArgs([]string{"demo", "--embedded-broker", "127.0.0.1:0", "--http", "127.0.0.1:0", "--members", "300",
		"--rate", "0", "--partitions", "2", "--log-level", "error"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("demo: %v", err)
		}
	}()

	var m []string
	for m == nil {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("demo stopped before printing its banner: %v\n%s", err, out.String())
		case <-ctx.Done():
			t.Fatalf("no members link with the token in the banner:\n%s", out.String())
		case <-time.After(100 * time.Millisecond):
		}
		m = bannerMembers.FindStringSubmatch(out.String())
	}
	banner := out.String()
	if m[1] != token {
		t.Fatalf("banner token %q, want %q", m[1], token)
	}
	for _, l := range strings.Split(banner, "\n") {
		if strings.Contains(l, "curl ") && !strings.Contains(l, `curl -H "Authorization: Bearer `+token+`" http://`) {
			t.Errorf("banner curl command without the token: %q", l)
		}
	}

	url := m[2]
	deadline := time.Now().Add(15 * time.Second)
	for {
		n, err := countMembers(ctx, url, token)
		if err == nil && n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has no members 15s after the banner (last answer: %d members, %v)", url, n, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// countMembers fetches the first page of a members link.
func countMembers(ctx context.Context, url, token string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, err
	}
	if res.StatusCode != http.StatusOK {
		return 0, errors.New(res.Status + ": " + string(body))
	}
	var page struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return 0, err
	}
	return len(page.Items), nil
}

func TestBannerToken(t *testing.T) {
	spots := []httpapi.SpotToken{{Spot: "globex", Token: "g-token"}, {Spot: "acme", Token: "a-token"}}
	for _, tc := range []struct {
		admin string
		spots []httpapi.SpotToken
		want  string
	}{
		{"", nil, ""},
		{"admin", nil, "admin"},
		{"admin", spots, "admin"},
		{"", spots, "a-token"},
		{"", spots[:1], ""},
	} {
		cfg := serve.DefaultConfig()
		cfg.APIToken, cfg.SpotTokens = tc.admin, tc.spots
		if got := bannerToken(cfg, "acme"); got != tc.want {
			t.Errorf("bannerToken(admin %q, spots %v) = %q, want %q", tc.admin, tc.spots, got, tc.want)
		}
	}
}
