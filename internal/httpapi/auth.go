package httpapi

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
)

// SpotToken grants access to one spot's API.
type SpotToken struct {
	Spot  string
	Token string
}

// LoadSpotTokens reads a spot tokens file: one "<spot>:<token>" per line
// (the token is everything after the first colon); blank lines and lines
// starting with # are ignored. Errors name the line, never the token.
func LoadSpotTokens(path string) ([]SpotToken, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("httpapi: spot tokens: %w", err)
	}
	defer func() { _ = f.Close() }()
	return parseSpotTokens(path, bufio.NewScanner(f))
}

func parseSpotTokens(name string, sc *bufio.Scanner) ([]SpotToken, error) {
	var out []SpotToken
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		spot, token, ok := strings.Cut(line, ":")
		spot, token = strings.TrimSpace(spot), strings.TrimSpace(token)
		switch {
		case !ok:
			return nil, fmt.Errorf("httpapi: spot tokens %s line %d: expected <spot>:<token>", name, n)
		case spot == "" || strings.ContainsAny(spot, "/\x00"):
			return nil, fmt.Errorf("httpapi: spot tokens %s line %d: invalid spot id", name, n)
		case len(token) < 16:
			return nil, fmt.Errorf("httpapi: spot tokens %s line %d: the token of spot %q is shorter than 16 characters", name, n, spot)
		}
		out = append(out, SpotToken{Spot: spot, Token: token})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("httpapi: spot tokens %s: %w", name, err)
	}
	return out, nil
}

// IsLoopback reports whether a listen address binds to loopback only
// (127.0.0.0/8, ::1 or localhost).
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// principal is who a request authenticated as.
type principal struct {
	admin bool
	spot  string // for a spot token
}

type tokenEntry struct {
	digest [sha256.Size]byte
	spot   string // "" for the admin token
}

// tokens checks bearer tokens in constant time: every configured token's
// digest is compared with the presented token's digest, always all of
// them, with subtle.ConstantTimeCompare (digests make the comparison
// independent of token lengths).
type tokens struct {
	entries []tokenEntry
}

func newTokens(admin string, spots []SpotToken) *tokens {
	t := &tokens{}
	if admin != "" {
		t.entries = append(t.entries, tokenEntry{digest: sha256.Sum256([]byte(admin))})
	}
	for _, s := range spots {
		t.entries = append(t.entries, tokenEntry{digest: sha256.Sum256([]byte(s.Token)), spot: s.Spot})
	}
	return t
}

func (t *tokens) open() bool { return len(t.entries) == 0 }

// authenticate resolves the request's bearer token.
func (t *tokens) authenticate(r *http.Request) (principal, *apiError) {
	if t.open() {
		return principal{admin: true}, nil
	}
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if h == "" {
		return principal{}, errorf(http.StatusUnauthorized, CodeUnauthorized, "missing Authorization: Bearer <token> header")
	}
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return principal{}, errorf(http.StatusUnauthorized, CodeUnauthorized, "the Authorization header must be \"Bearer <token>\"")
	}
	d := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	found := -1
	for i := range t.entries {
		if subtle.ConstantTimeCompare(d[:], t.entries[i].digest[:]) == 1 && found < 0 {
			found = i
		}
	}
	if found < 0 {
		return principal{}, errorf(http.StatusUnauthorized, CodeUnauthorized, "invalid token")
	}
	e := t.entries[found]
	return principal{admin: e.spot == "", spot: e.spot}, nil
}

// authorize checks that p may act on spot.
func (p principal) authorize(spot string) *apiError {
	if p.admin || p.spot == spot {
		return nil
	}
	return errorf(http.StatusForbidden, CodeForbidden, "this token is for spot %q and cannot access spot %q", p.spot, spot)
}

// AdminOnly wraps h (an operator endpoint such as /debug/pprof/) so that
// it answers only requests with the admin token, or any request when no
// token is configured (the server then listens on loopback only). Other
// requests get the API's 401 or 403 error.
func (a *API) AdminOnly(h http.Handler) http.Handler {
	return adminOnly(a.tokens, h)
}

func adminOnly(t *tokens, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, e := t.authenticate(r)
		if e == nil && !p.admin {
			e = errorf(http.StatusForbidden, CodeForbidden, "this endpoint needs the admin token")
		}
		if e != nil {
			writeError(w, e)
			return
		}
		h.ServeHTTP(w, r)
	})
}
