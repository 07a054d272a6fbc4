package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/smartgroups/smartgroups/docs"
	"github.com/smartgroups/smartgroups/engine"
)

// Config configures the API. Engine, DefinitionsTopic, Produce and
// Partitions are required.
type Config struct {
	// Engine is the local engine: it validates writes and answers reads
	// for the partitions it owns.
	Engine *engine.Engine
	// DefinitionsTopic is the physical name of the definitions topic, as
	// found in the engine's dead letters.
	DefinitionsTopic string
	// Produce writes one record to the definitions topic (value nil: a
	// tombstone) and returns its offset once the broker acknowledged it.
	Produce func(ctx context.Context, key string, value []byte) (int64, error)
	// DefinitionsEnd returns the definitions topic's last stable offset
	// (the end of what read_committed consumers can read). Before a
	// request, the API waits (briefly) until the local engine applied
	// that far, so that a read or write on this instance sees a write
	// another instance answered. Default: none (only this instance's own
	// writes are waited for).
	DefinitionsEnd func(ctx context.Context) (int64, error)
	// CatchUpWait bounds that wait. Default 2s.
	CatchUpWait time.Duration
	// Partitions is the number of member partitions.
	Partitions int32
	// Peers finds the instances owning the partitions this one does not
	// own. Default: none (a single instance).
	Peers Peers
	// Self is this instance's advertised HTTP address (host:port), to
	// recognize itself among the peers.
	Self string
	// APIToken is the admin token, valid for every spot. SpotTokens are
	// valid for their spot only. With neither, every request is allowed
	// (the runtime then listens on loopback only).
	APIToken   string
	SpotTokens []SpotToken
	// Ready reports whether the instance serves reads and writes (its
	// definitions are loaded). Default: always.
	Ready func() bool
	// WriteTimeout bounds the wait for the engine to apply a write.
	// Default 10s.
	WriteTimeout time.Duration
	// PeerTimeout bounds one request to a peer. Default 10s.
	PeerTimeout time.Duration
	// Sizes reads the group size points this instance recorded. Default:
	// none (every size series is empty).
	Sizes SizeStore
	// Logger logs failures (never tokens). Default: discard.
	Logger *slog.Logger
	// Now is the clock of definition ts values. Default time.Now.
	Now func() time.Time
	// MaxBodyBytes is the largest request body accepted (SPEC §4); a
	// larger one gets 413 body_too_large. Default MaxBodyBytes (1 MiB).
	MaxBodyBytes int64
}

// API is the HTTP admin API of SPEC §6.
type API struct {
	cfg     Config
	eng     *engine.Engine
	tokens  *tokens
	tracker *tracker
	feed    *feed
	client  *http.Client
	mux     *http.ServeMux
	// writeMu serializes validate-produce-apply sequences of this
	// instance, so that each write is validated against the effect of the
	// previous one.
	writeMu sync.Mutex
	// settled is a definitions [position, end) range found to hold
	// nothing the engine will apply (transaction markers only).
	settledMu sync.Mutex
	settled   [2]int64

	ctx    context.Context
	cancel context.CancelFunc
}

// New builds the API. The tracker of applied definitions starts at the
// engine's stored definitions position; the runtime reports every
// committed batch with Applied.
func New(cfg Config) (*API, error) {
	switch {
	case cfg.Engine == nil:
		return nil, errors.New("httpapi: Engine is required")
	case cfg.DefinitionsTopic == "":
		return nil, errors.New("httpapi: DefinitionsTopic is required")
	case cfg.Produce == nil:
		return nil, errors.New("httpapi: Produce is required")
	case cfg.Partitions < 1:
		return nil, errors.New("httpapi: Partitions must be at least 1")
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.CatchUpWait <= 0 {
		cfg.CatchUpWait = 2 * time.Second
	}
	if cfg.PeerTimeout <= 0 {
		cfg.PeerTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = MaxBodyBytes
	}
	if cfg.Ready == nil {
		cfg.Ready = func() bool { return true }
	}
	pos, _, err := cfg.Engine.Position(engine.KindDefinitions, cfg.DefinitionsTopic, 0)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &API{
		cfg:     cfg,
		eng:     cfg.Engine,
		tokens:  newTokens(cfg.APIToken, cfg.SpotTokens),
		tracker: newTracker(pos),
		feed:    newFeed(),
		client:  &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8, IdleConnTimeout: 30 * time.Second}},
		ctx:     ctx,
		cancel:  cancel,
	}
	a.routes()
	return a, nil
}

// Close cancels requests in flight and closes idle peer connections. Call
// it before shutting the HTTP server down.
func (a *API) Close() {
	a.cancel()
	a.client.CloseIdleConnections()
}

// Applied reports a batch the engine committed: the definitions records it
// contained advance the applied position, and its dead letters of
// definitions tell writers waiting for those offsets that they were
// refused. Call it after every Engine.Process, before the next one.
func (a *API) Applied(recs []engine.Record, res *engine.Result) {
	next := int64(-1)
	for i := range recs {
		if recs[i].Kind == engine.KindDefinitions {
			next = max(next, recs[i].Offset+1)
		}
	}
	if next < 0 {
		return
	}
	var dead []engine.DeadLetter
	if res != nil {
		for _, d := range res.DeadLetters {
			if d.Topic == a.cfg.DefinitionsTopic {
				dead = append(dead, d)
			}
		}
	}
	a.tracker.advance(next, dead)
}

type handler func(w http.ResponseWriter, r *http.Request, p principal) *apiError

func (a *API) routes() {
	m := http.NewServeMux()
	a.mux = m
	spot := func(pattern string, h handler) {
		m.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			a.serve(w, r, func(w http.ResponseWriter, r *http.Request, p principal) *apiError {
				a.catchUp(r.Context())
				return h(w, r, p)
			}, true)
		})
	}
	m.HandleFunc("GET /v1/openapi.yaml", func(w http.ResponseWriter, r *http.Request) {
		a.serve(w, r, func(w http.ResponseWriter, _ *http.Request, _ principal) *apiError {
			w.Header().Set("Content-Type", "application/yaml")
			_, _ = w.Write(docs.OpenAPI)
			return nil
		}, false)
	})
	m.HandleFunc("GET /v1/spots", func(w http.ResponseWriter, r *http.Request) { a.serve(w, r, a.listSpots, false) })
	spot("GET /v1/spots/{spot}/events", a.events)
	spot("POST /v1/spots/{spot}/groups", a.createGroup)
	spot("POST /v1/spots/{spot}/groups/preview", a.preview)
	spot("GET /v1/spots/{spot}/groups", a.listGroups)
	spot("GET /v1/spots/{spot}/groups/{id}", a.getGroup)
	spot("PATCH /v1/spots/{spot}/groups/{id}", a.patchGroup)
	spot("DELETE /v1/spots/{spot}/groups/{id}", a.deleteGroup)
	spot("GET /v1/spots/{spot}/groups/{id}/members", a.groupMembers)
	spot("GET /v1/spots/{spot}/groups/{id}/blacklist", a.listBlacklist)
	spot("PUT /v1/spots/{spot}/groups/{id}/blacklist/{member}", a.putBlacklist)
	spot("DELETE /v1/spots/{spot}/groups/{id}/blacklist/{member}", a.deleteBlacklist)
	spot("GET /v1/spots/{spot}/groups/{id}/explain/{member}", a.explain)
	spot("GET /v1/spots/{spot}/members/{member}/groups", a.memberGroups)
	spot("GET /v1/spots/{spot}/members/{member}", a.getMember)
	spot("GET /v1/spots/{spot}/members/{member}/history", a.memberHistory)
	spot("GET /v1/spots/{spot}/groups/{id}/resources", a.groupResources)
	spot("GET /v1/spots/{spot}/groups/{id}/size", a.groupSize)
	spot("GET /v1/spots/{spot}/members/{member}/resources", a.memberResources)
	spot("GET /v1/spots/{spot}/references", a.references)
	for _, kind := range []string{"property", "question"} {
		plural := map[string]string{"property": "properties", "question": "questions"}[kind]
		spot("GET /v1/spots/{spot}/"+plural, a.listSchemas(kind))
		spot("GET /v1/spots/{spot}/"+plural+"/{id}", a.getSchema(kind))
		spot("PUT /v1/spots/{spot}/"+plural+"/{id}", a.putSchema(kind))
		spot("DELETE /v1/spots/{spot}/"+plural+"/{id}", a.deleteSchema(kind))
	}
	// Peers wait for the coordinator's definitions position instead.
	m.HandleFunc("POST /v1/internal/spots/{spot}/partial", func(w http.ResponseWriter, r *http.Request) { a.serve(w, r, a.partial, true) })
}

// Handler returns the handler of every /v1 route.
func (a *API) Handler() http.Handler { return http.HandlerFunc(a.serveHTTP) }

func (a *API) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := a.mux.Handler(r); pattern == "" {
		// No route: find out whether the path exists with another method.
		rec := &statusRecorder{header: http.Header{}}
		a.mux.ServeHTTP(rec, r)
		if rec.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", rec.header.Get("Allow"))
			writeError(w, errorf(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, rec.header.Get("Allow")))
			return
		}
		if _, e := a.tokens.authenticate(r); e != nil {
			writeError(w, e)
			return
		}
		writeError(w, errorf(http.StatusNotFound, CodeNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path))
		return
	}
	a.mux.ServeHTTP(w, r)
}

// statusRecorder captures the status and headers of the mux's own 404 and
// 405 responses.
type statusRecorder struct {
	header http.Header
	status int
}

func (s *statusRecorder) Header() http.Header         { return s.header }
func (s *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (s *statusRecorder) WriteHeader(code int)        { s.status = code }

// serve authenticates, authorizes the path's spot, checks readiness, and
// runs h with the body limited to Config.MaxBodyBytes.
func (a *API) serve(w http.ResponseWriter, r *http.Request, h handler, spotScoped bool) {
	r.Body = http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes)
	p, e := a.tokens.authenticate(r)
	if e == nil && spotScoped {
		e = p.authorize(r.PathValue("spot"))
	}
	if e == nil && spotScoped && !a.cfg.Ready() {
		e = errorf(http.StatusServiceUnavailable, CodeNotReady, "the instance is starting: definitions are still loading")
	}
	if e == nil {
		ctx, cancel := context.WithCancel(r.Context())
		stop := context.AfterFunc(a.ctx, cancel)
		e = h(w, r.WithContext(ctx), p)
		stop()
		cancel()
	}
	if e != nil {
		if e.Status >= 500 {
			a.cfg.Logger.Warn("api request failed", "method", r.Method, "path", r.URL.Path, "status", e.Status, "code", e.Code, "err", e.Message)
		}
		writeError(w, e)
	}
}

// catchUp waits until the local engine applied every definition committed
// to the topic when the request arrived, so that a request sees the
// writes other instances already answered. It is best effort: after
// CatchUpWait (an engine busy with a long backfill, or a topic ending in
// transaction markers, which the engine's position never passes) the
// request goes on with the definitions applied so far; a [position, end)
// range that did not move during a whole wait is remembered as settled so
// that later requests do not wait for it again.
func (a *API) catchUp(ctx context.Context) {
	if a.cfg.DefinitionsEnd == nil {
		return
	}
	end, err := a.cfg.DefinitionsEnd(ctx)
	if err != nil {
		a.cfg.Logger.Warn("reading the end of the definitions topic", "err", err)
		return
	}
	pos := a.tracker.position()
	if pos >= end {
		return
	}
	a.settledMu.Lock()
	settled := a.settled == [2]int64{pos, end}
	a.settledMu.Unlock()
	if settled {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, a.cfg.CatchUpWait)
	defer cancel()
	if a.tracker.wait(wctx, end) != nil && ctx.Err() == nil && a.tracker.position() == pos {
		a.settledMu.Lock()
		a.settled = [2]int64{pos, end}
		a.settledMu.Unlock()
	}
}

// write produces a definitions record and waits until the engine applied
// it. The caller holds writeMu and validated the record with
// Engine.CheckDefinition. It returns the record's offset.
func (a *API) write(ctx context.Context, key string, value []byte) (int64, *apiError) {
	off, err := a.cfg.Produce(ctx, key, value)
	if err != nil {
		return 0, errorf(http.StatusServiceUnavailable, CodeUnavailable, "writing to the definitions topic %s failed: %v", a.cfg.DefinitionsTopic, err)
	}
	wctx, cancel := context.WithTimeout(ctx, a.cfg.WriteTimeout)
	defer cancel()
	if err := a.tracker.wait(wctx, off+1); err != nil {
		return off, errorf(http.StatusServiceUnavailable, CodeNotApplied,
			"the change was written to %s at offset %d but the engine did not apply it within %v; it will take effect when the engine catches up (retry the read later)",
			a.cfg.DefinitionsTopic, off, a.cfg.WriteTimeout).with("offset", off)
	}
	if d, ok := a.tracker.deadLetter(off); ok {
		e := fromRecordError(&engine.RecordError{Code: d.Code, Reason: d.Reason})
		if e.Status == http.StatusBadRequest {
			e.Status = http.StatusConflict
		}
		e.Code = CodeConflict
		e.Message = "a concurrent change made this one invalid and the engine refused it: " + d.Reason
		return off, e.with("offset", off)
	}
	return off, nil
}

// tracker follows the definitions position the local engine applied.
type tracker struct {
	mu    sync.Mutex
	next  int64 // next definitions offset the engine will read
	wake  chan struct{}
	dead  map[int64]engine.DeadLetter
	order []int64
}

const deadKept = 4096

func newTracker(next int64) *tracker {
	return &tracker{next: next, wake: make(chan struct{}), dead: map[int64]engine.DeadLetter{}}
}

func (t *tracker) advance(next int64, dead []engine.DeadLetter) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, d := range dead {
		t.dead[d.Offset] = d
		t.order = append(t.order, d.Offset)
		if len(t.order) > deadKept {
			delete(t.dead, t.order[0])
			t.order = t.order[1:]
		}
	}
	if next > t.next {
		t.next = next
		close(t.wake)
		t.wake = make(chan struct{})
	}
}

func (t *tracker) position() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.next
}

// wait returns once the engine's definitions position reached pos.
func (t *tracker) wait(ctx context.Context, pos int64) error {
	for {
		t.mu.Lock()
		next, wake := t.next, t.wake
		t.mu.Unlock()
		if next >= pos {
			return nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return fmt.Errorf("httpapi: definitions applied up to %d, waiting for %d: %w", next, pos, ctx.Err())
		}
	}
}

func (t *tracker) deadLetter(off int64) (engine.DeadLetter, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	d, ok := t.dead[off]
	return d, ok
}
