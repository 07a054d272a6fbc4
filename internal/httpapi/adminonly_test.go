package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestAdminOnly(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("profile")) })
	const admin, spotTok = "admin-token-0123456789", "acme-token-0123456789"
	h := adminOnly(newTokens(admin, []SpotToken{{Spot: "acme", Token: spotTok}}), ok)
	for _, c := range []struct {
		header string
		want   int
	}{{"", http.StatusUnauthorized}, {"Bearer wrong-token-0123456789", http.StatusUnauthorized},
		{"Bearer " + spotTok, http.StatusForbidden}, {"Bearer " + admin, http.StatusOK}} {
		r := httptest.NewRequest(http.MethodGet, "/debug/pprof/", nil)
		if c.header != "" {
			r.Header.Set("Authorization", c.header)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != c.want {
			t.Errorf("Authorization %q: status %d, want %d (%s)", c.header, w.Code, c.want, w.Body.String())
		}
	}
	// Without tokens (loopback-only listener) the endpoint is open.
	w := httptest.NewRecorder()
	adminOnly(newTokens("", nil), ok).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/debug/pprof/", nil))
	if w.Code != http.StatusOK || w.Body.String() != "profile" {
		t.Errorf("open server: status %d body %q", w.Code, w.Body.String())
	}
}
