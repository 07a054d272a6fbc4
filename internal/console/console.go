package console

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config configures the console.
type Config struct {
	// API is the handler of the /v1 HTTP API (httpapi.API.Handler). The
	// console calls it in-process with the signed-in token, so every screen
	// answers exactly what the API answers, with the API's authorization.
	API http.Handler
	// Open is true when the API needs no token (it then listens on
	// loopback only): the console needs no sign-in either.
	Open bool
	// Secret seals session cookies (SecretFromTokens). Empty: a random key
	// per process (sessions end when the process restarts).
	Secret []byte
	// Logger logs failures (never tokens). Default: discard.
	Logger *slog.Logger
	// Now is the clock of session expiry. Default time.Now.
	Now func() time.Time
}

// Console serves the admin console's pages.
type Console struct {
	cfg    Config
	sealer *sealer
	tmpl   *template.Template
	mux    *http.ServeMux
	static http.Handler
}

// New builds the console.
func New(cfg Config) (*Console, error) {
	if cfg.API == nil {
		return nil, errors.New("console: API is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s, err := newSealer(cfg.Secret)
	if err != nil {
		return nil, err
	}
	tmpl, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("console: templates: %w", err)
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("console: static files: %w", err)
	}
	c := &Console{cfg: cfg, sealer: s, tmpl: tmpl, static: http.StripPrefix("/static/", http.FileServerFS(sub))}
	c.routes()
	return c, nil
}

// Handler returns the handler of every console route: mount it at "/"
// (the API, /metrics and the health endpoints have routes of their own).
func (c *Console) Handler() http.Handler { return c.mux }

// page is a handler of a signed-in request.
type page func(w http.ResponseWriter, r *http.Request, s *req)

// req is one signed-in request: its session and CSRF token.
type req struct {
	c    *Console
	r    *http.Request
	sess session
	CSRF string
}

func (c *Console) routes() {
	m := http.NewServeMux()
	c.mux = m
	m.HandleFunc("GET /static/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		c.static.ServeHTTP(w, r)
	})
	m.HandleFunc("GET /login", c.loginForm)
	m.HandleFunc("POST /login", c.login)
	m.HandleFunc("POST /logout", c.logout)
	handle := func(pattern string, h page) { m.HandleFunc(pattern, c.signedIn(h)) }
	handle("GET /{$}", c.home)
	handle("GET /spots/{spot}/counts.json", c.groupCounts)
	handle("GET /spots/{spot}/groups/new", c.newGroup)
	handle("POST /spots/{spot}/groups/new", c.builderPost)
	handle("GET /spots/{spot}/groups/{id}", c.groupGeneral)
	handle("POST /spots/{spot}/groups/{id}", c.groupUpdateInfo)
	handle("POST /spots/{spot}/groups/{id}/delete", c.groupDelete)
	handle("GET /spots/{spot}/groups/{id}/conditions", c.editConditions)
	handle("POST /spots/{spot}/groups/{id}/conditions", c.conditionsPost)
	handle("GET /spots/{spot}/groups/{id}/members", c.groupMembers)
	handle("POST /spots/{spot}/groups/{id}/blacklist", c.blacklistPost)
	handle("GET /spots/{spot}/groups/{id}/resources", c.groupResources)
	handle("GET /spots/{spot}/groups/{id}/size", c.groupSize)
	handle("GET /spots/{spot}/members/{member}", c.memberPage)
	handle("GET /spots/{spot}/member", func(w http.ResponseWriter, r *http.Request, s *req) {
		http.Redirect(w, r, "/spots/"+esc(r.PathValue("spot"))+"/members/"+esc(strings.TrimSpace(r.URL.Query().Get("id"))), http.StatusSeeOther)
	})
	handle("GET /spots/{spot}/feed", c.feedPage)
	handle("GET /spots/{spot}/events", c.events)
	handle("GET /spots/{spot}/size.json", c.sizeJSON)
}

// signedIn resolves the session (creating one when the API is open),
// redirects to the sign-in form without one, and checks the CSRF token and
// the origin of every write.
func (c *Console) signedIn(h page) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
		w.Header().Set("Referrer-Policy", "same-origin")
		sess, err := c.session(r)
		if err != nil {
			if !c.cfg.Open {
				c.toLogin(w, r)
				return
			}
			sess = session{Nonce: newNonce(), Expires: c.cfg.Now().Add(sessionTTL).Unix()}
			if err := c.setSession(w, r, sess); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			got := r.Header.Get("X-CSRF-Token")
			if got == "" {
				got = r.PostFormValue("csrf")
			}
			if !sameOrigin(r) || !c.sealer.checkCSRF(sess, got) {
				http.Error(w, "this form is stale or comes from another site: reload the page and try again", http.StatusForbidden)
				return
			}
		}
		h(w, r, &req{c: c, r: r, sess: sess, CSRF: c.sealer.csrf(sess)})
	}
}

func (c *Console) session(r *http.Request) (session, error) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return session{}, errNoSession
	}
	return c.sealer.open(ck.Value, c.cfg.Now())
}

func (c *Console) toLogin(w http.ResponseWriter, r *http.Request) {
	to := "/login"
	if r.Method == http.MethodGet && r.URL.Path != "/" {
		to += "?next=" + url.QueryEscape(r.URL.RequestURI())
	}
	if r.Header.Get("HX-Request") != "" {
		w.Header().Set("HX-Redirect", to)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// apiResult is the answer of an in-process API call.
type apiResult struct {
	Status int
	Body   []byte
}

// apiErr is the API's error body.
type apiErr struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details"`
}

func (a apiResult) ok() bool { return a.Status >= 200 && a.Status < 300 }

func (a apiResult) decode(v any) error {
	if err := json.Unmarshal(a.Body, v); err != nil {
		return fmt.Errorf("console: decoding the API's answer: %w", err)
	}
	return nil
}

// err returns the API error of a failed call (nil when it succeeded).
func (a apiResult) err() *apiErr {
	if a.ok() {
		return nil
	}
	var b struct {
		Error *apiErr `json:"error"`
	}
	if json.Unmarshal(a.Body, &b) != nil || b.Error == nil {
		return &apiErr{Code: "internal", Message: fmt.Sprintf("the API answered %d", a.Status)}
	}
	return b.Error
}

func (e *apiErr) Error() string { return e.Message }

// call runs one API request in-process with the session's token.
func (s *req) call(method, path string, body any) apiResult {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return apiResult{Status: http.StatusBadRequest, Body: errorJSON("invalid_request", err.Error())}
		}
		rd = bytes.NewReader(b)
	}
	return s.c.callAPI(s.r.Context(), s.sess.Token, s.r.RemoteAddr, method, path, rd)
}

func (c *Console) callAPI(ctx context.Context, token, remote, method, path string, body io.Reader) apiResult {
	r, err := http.NewRequestWithContext(ctx, method, path, body)
	if err != nil {
		return apiResult{Status: http.StatusInternalServerError, Body: errorJSON("internal", err.Error())}
	}
	r.RemoteAddr = remote
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	rec := &recorder{header: http.Header{}}
	c.cfg.API.ServeHTTP(rec, r)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return apiResult{Status: rec.status, Body: rec.body.Bytes()}
}

func errorJSON(code, msg string) []byte {
	b, _ := json.Marshal(map[string]any{"error": apiErr{Code: code, Message: msg}})
	return b
}

// recorder is the ResponseWriter of in-process API calls.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

// render executes a template into w (a failure is logged, and answered
// with 500 when nothing was written yet).
func (c *Console) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := c.tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		c.cfg.Logger.Error("console: rendering", "template", name, "err", err)
		http.Error(w, "rendering the page failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// esc escapes one path segment.
func esc(s string) string { return url.PathEscape(s) }

// spotPath is the API path of a spot.
func spotPath(spot string) string { return "/v1/spots/" + esc(spot) }

func (s *req) back(w http.ResponseWriter, to string) {
	if s.r.Header.Get("HX-Request") != "" {
		w.Header().Set("HX-Redirect", to)
		w.WriteHeader(http.StatusOK)
		return
	}
	http.Redirect(w, s.r, to, http.StatusSeeOther)
}

// flash messages travel in the query string of a redirect.
func withMsg(path, msg string) string {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return path + sep + "msg=" + url.QueryEscape(msg)
}
