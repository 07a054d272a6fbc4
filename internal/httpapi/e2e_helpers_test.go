package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/smartgroups/smartgroups/internal/httpapi"
	"github.com/smartgroups/smartgroups/internal/serve"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/cockroachdb/pebble/v2/internal/invariants.(*CloseChecker).Close"))
}

const (
	adminToken  = "admin-token-0123456789"
	acmeToken   = "acme-token-0123456789"
	globexToken = "globex-token-0123456789"
)

type instance struct {
	ready  serve.Ready
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// stop stops the instance and reports its error.
func (in *instance) stop(t *testing.T) {
	in.once.Do(func() {
		in.cancel()
		if err := <-in.done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
}

func start(t *testing.T, cfg serve.Config) *instance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{cancel: cancel, done: make(chan error, 1)}
	readyc := make(chan serve.Ready, 1)
	cfg.OnReady = func(r serve.Ready) { readyc <- r }
	go func() { in.done <- serve.Run(ctx, cfg) }()
	select {
	case in.ready = <-readyc:
	case err := <-in.done:
		t.Fatalf("serve exited before ready: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("serve not ready after 60s")
	}
	t.Cleanup(func() { in.stop(t) })
	return in
}

func testConfig(t *testing.T) serve.Config {
	cfg := serve.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.EmbeddedAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Kafka.Partitions = 2
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.APIToken = adminToken
	cfg.SpotTokens = []httpapi.SpotToken{{Spot: "acme", Token: acmeToken}, {Spot: "globex", Token: globexToken}}
	return cfg
}

// ---- HTTP client ----

type client struct {
	t     *testing.T
	base  string
	token string
	hc    *http.Client
}

func newClient(t *testing.T, in *instance, token string) *client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &client{t: t, base: "http://" + in.ready.HTTPAddr, token: token, hc: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
}

func (c *client) as(token string) *client {
	cp := *c
	cp.token = token
	return &cp
}

type resp struct {
	status int
	body   []byte
	header http.Header
}

// do sends a request (body: nil, a string sent as is, or a value encoded
// as JSON) and validates the exchange against the OpenAPI document.
func (c *client) do(method, path string, body any) resp {
	c.t.Helper()
	var b []byte
	switch v := body.(type) {
	case nil:
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			c.t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(b))
	if err != nil {
		c.t.Fatal(err)
	}
	if b != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	rb, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	if strings.HasPrefix(path, "/v1/") {
		if err := httpapi.ValidateExchange(req, b, res.StatusCode, res.Header, rb); err != nil {
			c.t.Errorf("OpenAPI: %v", err)
		}
	}
	return resp{res.StatusCode, rb, res.Header}
}

// must sends a request, requires the status and decodes the body into out.
func (c *client) must(status int, method, path string, body any, out any) resp {
	c.t.Helper()
	r := c.do(method, path, body)
	if r.status != status {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, status, r.body)
	}
	if out != nil {
		if err := json.Unmarshal(r.body, out); err != nil {
			c.t.Fatalf("%s %s: decoding %s: %v", method, path, r.body, err)
		}
	}
	return r
}

type apiErr struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details"`
}

// fail sends a request that must fail with status and code, and returns
// the error.
func (c *client) fail(status int, code, method, path string, body any) apiErr {
	c.t.Helper()
	r := c.do(method, path, body)
	var e struct {
		Error *apiErr `json:"error"`
	}
	if r.status != status || json.Unmarshal(r.body, &e) != nil || e.Error == nil || e.Error.Code != code || e.Error.Details == nil {
		c.t.Fatalf("%s %s: got %d %s, want %d with code %s", method, path, r.status, r.body, status, code)
	}
	return *e.Error
}

func eventually(t *testing.T, what string, timeout time.Duration, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ---- Kafka input ----

type producer struct {
	t      *testing.T
	cl     *kgo.Client
	prefix string
}

func newProducer(t *testing.T, in *instance, prefix string) *producer {
	cl, err := kgo.NewClient(kgo.SeedBrokers(in.ready.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &producer{t: t, cl: cl, prefix: prefix}
}

func (p *producer) send(topic, key string, v any) {
	p.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := p.cl.ProduceSync(context.Background(), &kgo.Record{Topic: p.prefix + topic, Key: []byte(key), Value: b}).FirstErr(); err != nil {
		p.t.Fatal(err)
	}
}

// member produces a profile patch of a member of spot acme.
func (p *producer) member(id string, profile map[string]any) {
	p.t.Helper()
	p.send("profiles", "acme/"+id, map[string]any{"spot": "acme", "member": id, "ts": time.Now().UnixMilli(), "profile": profile})
}

func (p *producer) activity(id, evt, typ, resource string) {
	p.t.Helper()
	p.send("activities", "acme/"+id, map[string]any{"spot": "acme", "member": id, "ts": time.Now().UnixMilli(), "id": evt,
		"type": typ, "resource": map[string]string{"id": resource, "title": resource}})
}

func (p *producer) custom(id string, custom map[string]any) {
	p.t.Helper()
	p.send("properties", "acme/"+id, map[string]any{"spot": "acme", "member": id, "ts": time.Now().UnixMilli(), "custom": custom})
}

// ---- API types ----

type group struct {
	Kind        string          `json:"kind"`
	Spot        string          `json:"spot"`
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Icon        string          `json:"icon"`
	Description string          `json:"description"`
	Rule        json.RawMessage `json:"rule"`
	MemberCount *int            `json:"member_count"`
}

type memberSummary struct {
	Member    string `json:"member"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Email     string `json:"email"`
	Status    string `json:"status"`
	Role      string `json:"role"`
}

type list[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

type preview struct {
	Count   int             `json:"count"`
	Members []memberSummary `json:"members"`
}

func ids(ms []memberSummary) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.Member)
	}
	return out
}

// allMembers pages through a group's members with the given query and
// page size.
func (c *client) allMembers(spot, group, query string, limit int) []string {
	c.t.Helper()
	var out []string
	cursor := ""
	for i := 0; ; i++ {
		if i > 10000 {
			c.t.Fatal("pagination does not end")
		}
		var page list[memberSummary]
		path := fmt.Sprintf("/v1/spots/%s/groups/%s/members?limit=%d%s", spot, group, limit, query)
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		c.must(200, "GET", path, nil, &page)
		out = append(out, ids(page.Items)...)
		if page.NextCursor == "" {
			return out
		}
		cursor = page.NextCursor
	}
}
