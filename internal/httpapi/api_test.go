package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/smartgroups/smartgroups/engine"
	"github.com/smartgroups/smartgroups/state"
)

// harness runs the API over an engine on a temporary store, without
// Kafka: Produce hands the record to the engine like the runtime would
// (unless the test replaces it).
type harness struct {
	t   *testing.T
	eng *engine.Engine
	api *API
	srv *httptest.Server

	mu  sync.Mutex
	off int64 // next definitions offset
}

func newHarness(t *testing.T, partitions int32, owned []int32, mod func(*Config)) *harness {
	t.Helper()
	st, err := state.Open(t.TempDir(), state.Options{})
	require.NoError(t, err)
	ecfg := engine.DefaultConfig()
	ecfg.Clock, ecfg.Now = engine.ClockFixed, time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC).UnixMilli()
	ecfg.PartitionOf = func(spot, member string) int32 { return int32(len(member)) % partitions }
	eng, err := engine.New(st, ecfg)
	require.NoError(t, err)
	_, err = eng.Assign(context.Background(), owned)
	require.NoError(t, err)
	h := &harness{t: t, eng: eng}
	cfg := Config{Engine: eng, DefinitionsTopic: "defs", Partitions: partitions, Produce: h.produce,
		APIToken: "admin-token-0123456789", SpotTokens: []SpotToken{{"acme", "acme-token-0123456789"}}}
	if mod != nil {
		mod(&cfg)
	}
	h.api, err = New(cfg)
	require.NoError(t, err)
	h.srv = httptest.NewServer(h.api.Handler())
	t.Cleanup(func() {
		h.api.Close()
		h.srv.Close()
		require.NoError(t, st.Close())
	})
	return h
}

// process applies records as the runtime would, reporting them to the API.
func (h *harness) process(recs ...engine.Record) *engine.Result {
	h.t.Helper()
	res, err := h.eng.Process(context.Background(), recs)
	require.NoError(h.t, err)
	h.api.Applied(recs, res)
	return res
}

func (h *harness) defRecord(key string, value []byte) engine.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := engine.Record{Kind: engine.KindDefinitions, Topic: "defs", Offset: h.off, Key: []byte(key), Value: value}
	h.off++
	return r
}

func (h *harness) produce(_ context.Context, key string, value []byte) (int64, error) {
	r := h.defRecord(key, value)
	h.process(r)
	return r.Offset, nil
}

func (h *harness) member(id, profile string) {
	h.t.Helper()
	v := fmt.Sprintf(`{"spot":"acme","member":%q,"ts":"2026-11-20T08:00:00Z","profile":%s}`, id, profile)
	h.process(engine.Record{Kind: engine.KindProfiles, Topic: "profiles", Partition: h.eng.PartitionOf("acme", id),
		Key: []byte("acme/" + id), Value: []byte(v)})
}

type response struct {
	status int
	body   []byte
	header http.Header
}

func (r response) code() string { c, _ := r.err(); return c }

func (r response) msg() string { _, m := r.err(); return m }

func (r response) err() (string, string) {
	var eb struct {
		Error struct {
			Code    string         `json:"code"`
			Message string         `json:"message"`
			Details map[string]any `json:"details"`
		} `json:"error"`
	}
	_ = json.Unmarshal(r.body, &eb)
	return eb.Error.Code, eb.Error.Message
}

func (h *harness) do(method, path, token, body string) response {
	h.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	require.NoError(h.t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := h.srv.Client().Do(req)
	require.NoError(h.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(h.t, err)
	if strings.HasPrefix(path, "/v1/") {
		if err := ValidateExchange(req, []byte(body), resp.StatusCode, resp.Header, b); err != nil {
			h.t.Errorf("OpenAPI: %v", err)
		}
	}
	return response{resp.StatusCode, b, resp.Header}
}

const admin = "admin-token-0123456789"

func TestWriteNotAppliedInTimeIs503(t *testing.T) {
	h := newHarness(t, 1, []int32{0}, func(c *Config) { c.WriteTimeout = 150 * time.Millisecond })
	h.api.cfg.Produce = func(context.Context, string, []byte) (int64, error) { return 7, nil } // never applied
	r := h.do("POST", "/v1/spots/acme/groups", admin, `{"id":"g1","type":"static","name":"G"}`)
	require.Equal(t, http.StatusServiceUnavailable, r.status, string(r.body))
	require.Equal(t, CodeNotApplied, r.code())
	require.Contains(t, string(r.body), "offset 7")
	require.Contains(t, string(r.body), "did not apply it within 150ms")
}

func TestKafkaFailureIs503AndNothingApplied(t *testing.T) {
	h := newHarness(t, 1, []int32{0}, nil)
	h.api.cfg.Produce = func(context.Context, string, []byte) (int64, error) { return 0, fmt.Errorf("broker down") }
	r := h.do("POST", "/v1/spots/acme/groups", admin, `{"id":"g1","type":"static","name":"G"}`)
	require.Equal(t, http.StatusServiceUnavailable, r.status)
	require.Contains(t, string(r.body), "broker down")
}

// A write validated here but made invalid by a concurrent change of
// another instance is dead-lettered by the engine: the writer gets 409.
func TestConcurrentConflictIs409(t *testing.T) {
	h := newHarness(t, 1, []int32{0}, nil)
	require.Equal(t, http.StatusCreated, h.do("POST", "/v1/spots/acme/groups", admin,
		`{"id":"vip","type":"smart","name":"VIP","rule":{"field":"profile.tags","op":"has_any","value":["vip"]}}`).status)
	h.api.cfg.Produce = func(_ context.Context, key string, value []byte) (int64, error) {
		// Another instance deletes vip just before this record.
		other := h.defRecord("acme/group/vip", nil)
		r := h.defRecord(key, value)
		h.process(other, r)
		return r.Offset, nil
	}
	r := h.do("POST", "/v1/spots/acme/groups", admin, `{"id":"nested","type":"smart","name":"N","rule":{"group":"vip"}}`)
	require.Equal(t, http.StatusConflict, r.status, string(r.body))
	require.Equal(t, CodeConflict, r.code())
	require.Contains(t, r.msg(), `group "vip" does not exist`)
	_, ok := h.api.lookupGroup("acme", "nested")
	require.False(t, ok)
}

// Reads never answer for part of the spot: a partition without a
// reachable owner gives 503 naming it.
func TestUnownedPartitionIs503(t *testing.T) {
	retryBackoff = []time.Duration{0, 10 * time.Millisecond}
	defer func() { retryBackoff = []time.Duration{0, 250 * time.Millisecond, 750 * time.Millisecond, time.Second} }()
	for _, peers := range []Peers{nil, fakePeers{1: "127.0.0.1:1"}} {
		h := newHarness(t, 2, []int32{0}, func(c *Config) { c.Peers = peers })
		r := h.do("POST", "/v1/spots/acme/groups/preview", admin, `{"rule":{"all":[]}}`)
		require.Equal(t, http.StatusServiceUnavailable, r.status, string(r.body))
		require.Equal(t, CodeUnavailable, r.code())
		if peers == nil {
			require.Contains(t, string(r.body), "partitions [1] have no reachable owner")
		} else {
			require.Contains(t, string(r.body), "127.0.0.1:1")
		}
		// A member of the owned partition can be explained; one of the
		// other partition cannot.
		h.member("u0", `{"status":"accepted"}`) // len 2 -> partition 0
		require.Equal(t, http.StatusCreated, h.do("POST", "/v1/spots/acme/groups", admin, `{"id":"g","type":"smart","name":"G","rule":{"all":[]}}`).status)
		require.Equal(t, http.StatusOK, h.do("GET", "/v1/spots/acme/groups/g/explain/u0", admin, "").status)
		require.Equal(t, http.StatusServiceUnavailable, h.do("GET", "/v1/spots/acme/groups/g/explain/u10", admin, "").status)
	}
}

type fakePeers map[int32]string

func (f fakePeers) Owners(context.Context, bool) (map[int32]string, error) { return f, nil }

func TestNotReadyIs503(t *testing.T) {
	h := newHarness(t, 1, []int32{0}, func(c *Config) { c.Ready = func() bool { return false } })
	r := h.do("GET", "/v1/spots/acme/groups", admin, "")
	require.Equal(t, http.StatusServiceUnavailable, r.status)
	require.Equal(t, CodeNotReady, r.code())
	require.Equal(t, http.StatusUnauthorized, h.do("GET", "/v1/spots/acme/groups", "", "").status)
}

func TestOpenWithoutTokens(t *testing.T) {
	h := newHarness(t, 1, []int32{0}, func(c *Config) { c.APIToken, c.SpotTokens = "", nil })
	require.Equal(t, http.StatusOK, h.do("GET", "/v1/spots/acme/groups", "", "").status)
	require.Equal(t, http.StatusOK, h.do("GET", "/v1/spots/acme/groups", "whatever", "").status)
}

func TestAuthentication(t *testing.T) {
	h := newHarness(t, 1, []int32{0}, nil)
	for _, c := range []struct {
		header string
		status int
	}{
		{"", 401}, {"Bearer", 401}, {"Basic YWRtaW46eA==", 401}, {"Bearer wrong-token-0123456789", 401},
		{"Bearer " + admin + "x", 401}, {"Bearer " + admin[:len(admin)-1], 401},
		{"Bearer " + admin, 200}, {"bearer " + admin, 200}, {"Bearer acme-token-0123456789", 200},
	} {
		req, _ := http.NewRequest("GET", h.srv.URL+"/v1/spots/acme/groups", nil)
		if c.header != "" {
			req.Header.Set("Authorization", c.header)
		}
		resp, err := h.srv.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, c.status, resp.StatusCode, c.header)
		if c.status == 401 {
			require.Equal(t, `Bearer realm="smartgroups"`, resp.Header.Get("WWW-Authenticate"))
		}
	}
	r := h.do("GET", "/v1/spots/globex/groups", "acme-token-0123456789", "")
	require.Equal(t, http.StatusForbidden, r.status)
	require.Equal(t, CodeForbidden, r.code())
	require.Equal(t, http.StatusOK, h.do("GET", "/v1/spots/globex/groups", admin, "").status)
	// The internal endpoint is scoped and authenticated like the others.
	require.Equal(t, http.StatusForbidden, h.do("POST", "/v1/internal/spots/globex/partial", "acme-token-0123456789", `{"op":"counts","partitions":[0]}`).status)
	require.Equal(t, http.StatusUnauthorized, h.do("POST", "/v1/internal/spots/acme/partial", "", `{"op":"counts","partitions":[0]}`).status)
}

func TestSpotTokensFile(t *testing.T) {
	toks, err := parseSpotTokens("f", bufio.NewScanner(strings.NewReader("# comment\n\nacme: secret-acme-0123456789\nglobex:with:colons-0123456789\n")))
	require.NoError(t, err)
	require.Equal(t, []SpotToken{{"acme", "secret-acme-0123456789"}, {"globex", "with:colons-0123456789"}}, toks)
	for _, bad := range []string{"acme", ":token-0123456789012", "acme:tiny1", "a/b:token-0123456789012"} {
		_, err := parseSpotTokens("f", bufio.NewScanner(strings.NewReader("# x\n"+bad+"\n")))
		require.Error(t, err, bad)
		require.Contains(t, err.Error(), "line 2")
		require.NotContains(t, err.Error(), "tiny1")
		require.NotContains(t, err.Error(), "token-0123456789012")
	}
}

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:8080": true, "127.1.2.3:1": true, "[::1]:80": true, "localhost:8080": true,
		"0.0.0.0:8080": false, ":8080": false, "10.0.0.1:80": false, "example.com:80": false, "[::]:80": false} {
		require.Equal(t, want, IsLoopback(addr), addr)
	}
}

func TestAddrFromClientID(t *testing.T) {
	for id, want := range map[string]string{
		PeerClientID("smartgroups", "127.0.0.1:8080") + "-consumer": "127.0.0.1:8080",
		PeerClientID("sg@x", "[::1]:9") + "-consumer":               "[::1]:9",
		PeerClientID("smartgroups", "my-host:80"):                   "my-host:80",
		"smartgroups-consumer":                                      "",
		"smartgroups@host-consumer":                                 "",
	} {
		got, ok := AddrFromClientID(id)
		require.Equal(t, want != "", ok, id)
		require.Equal(t, want, got, id)
	}
}

// TestBodyLimitConfigured checks that Config.MaxBodyBytes is the limit
// request bodies are held to, and that the refusal names it.
func TestBodyLimitConfigured(t *testing.T) {
	h := newHarness(t, 1, []int32{0}, func(c *Config) { c.MaxBodyBytes = 2048 })
	group := func(n int) string { return `{"type":"static","name":"` + strings.Repeat("x", n) + `"}` }
	r := h.do("POST", "/v1/spots/acme/groups", admin, group(3000))
	require.Equal(t, 413, r.status, string(r.body))
	require.Equal(t, CodeBodyTooLarge, r.code())
	require.Contains(t, r.msg(), "2 KiB (2048 bytes) (max request bytes)")
	var shape struct {
		Error struct{ Details map[string]any } `json:"error"`
	}
	require.NoError(t, json.Unmarshal(r.body, &shape))
	require.Equal(t, 2048.0, shape.Error.Details["limit_bytes"])
	r = h.do("POST", "/v1/spots/acme/groups", admin, group(200))
	require.Equal(t, 201, r.status, string(r.body))
}

func TestBodyErrors(t *testing.T) {
	h := newHarness(t, 1, []int32{0}, nil)
	for _, c := range []struct {
		body, code, msg string
		status          int
	}{
		{`{"id":"g","type":"static","name":"G"`, CodeInvalidJSON, "unexpected end", 400},
		{`{"id":"g","type":"static","name":"G"} {}`, CodeInvalidJSON, "after the JSON object", 400},
		{`[1]`, CodeInvalidJSON, "must be a JSON object", 400},
		{``, CodeInvalidJSON, "empty", 400},
		{`{"id":"g","type":"static","name":"G","colour":"red"}`, CodeInvalidRequest, `unknown field "colour"`, 400},
		{`{"id":"g","type":"static","name":7}`, CodeInvalidRequest, "field name: expected a string", 400},
		{`{"id":"g","type":"static","name":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, CodeBodyTooLarge, "1 MiB (1048576 bytes)", 413},
	} {
		r := h.do("POST", "/v1/spots/acme/groups", admin, c.body)
		require.Equal(t, c.status, r.status, c.body)
		require.Equal(t, c.code, r.code(), string(r.body))
		require.Contains(t, r.msg(), c.msg)
		var shape map[string]map[string]any
		require.NoError(t, json.Unmarshal(r.body, &shape))
		require.Len(t, shape["error"], 3)
		require.IsType(t, map[string]any{}, shape["error"]["details"])
	}
}

// TestErrorsNameWhatTheUserWrote checks that a rule error in a preview or
// in a create without an id does not name the id the API made up.
func TestErrorsNameWhatTheUserWrote(t *testing.T) {
	h := newHarness(t, 1, []int32{0}, nil)
	bad := `{"field":"profile.nope","op":"eq","value":"x"}`
	r := h.do("POST", "/v1/spots/acme/groups/preview", admin, `{"rule":`+bad+`}`)
	require.Equal(t, http.StatusBadRequest, r.status, string(r.body))
	require.Contains(t, r.msg(), "profile.nope")
	require.NotContains(t, r.msg(), `"preview"`)
	r = h.do("POST", "/v1/spots/acme/groups", admin, `{"type":"smart","name":"VIPs","rule":`+bad+`}`)
	require.Equal(t, http.StatusBadRequest, r.status, string(r.body))
	require.Contains(t, r.msg(), "profile.nope")
	require.NotContains(t, r.msg(), "group \"")
	// With an id the user wrote, the message names it.
	r = h.do("POST", "/v1/spots/acme/groups", admin, `{"id":"vips","type":"smart","name":"VIPs","rule":`+bad+`}`)
	require.Equal(t, http.StatusBadRequest, r.status, string(r.body))
	require.Contains(t, r.msg(), `group "vips"`)
}

// TestResourcesForbiddenAcrossSpots checks that a spot token cannot read
// another spot's linked resources or a member's access there.
func TestResourcesForbiddenAcrossSpots(t *testing.T) {
	h := newHarness(t, 1, []int32{0}, nil)
	for _, path := range []string{"/v1/spots/globex/groups/g1/resources", "/v1/spots/globex/members/u1/resources"} {
		r := h.do("GET", path, "acme-token-0123456789", "")
		require.Equal(t, http.StatusForbidden, r.status, path)
		require.Equal(t, CodeForbidden, r.code(), path)
	}
}
