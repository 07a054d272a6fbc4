package console_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// web is a browser without JavaScript: a cookie jar, no redirects
// followed unless asked.
type web struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func newWeb(t *testing.T, base string) *web {
	jar, _ := cookiejar.New(nil)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &web{t: t, base: base, hc: &http.Client{Jar: jar, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// answer is a response, read and closed.
type answer struct {
	StatusCode int
	Header     http.Header
}

func (w *web) do(method, path string, form url.Values, header map[string]string) (answer, string) {
	w.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, w.base+path, body)
	if err != nil {
		w.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := w.hc.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return answer{StatusCode: res.StatusCode, Header: res.Header}, string(b)
}

func (w *web) signIn(token string) {
	w.t.Helper()
	res, body := w.do("POST", "/login", url.Values{"token": {token}, "next": {"/"}}, nil)
	if res.StatusCode != http.StatusSeeOther {
		w.t.Fatalf("sign in: %d %s", res.StatusCode, body)
	}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func TestConsoleSessions(t *testing.T) {
	base := startServe(t)

	// Without a session every page sends to the sign-in form; htmx
	// requests are told where to go.
	w := newWeb(t, base)
	res, _ := w.do("GET", "/spots/acme/groups/paying-teams", nil, nil)
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/login?next=") {
		t.Fatalf("no session: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	res, _ = w.do("GET", "/", nil, map[string]string{"HX-Request": "true"})
	if res.StatusCode != http.StatusUnauthorized || res.Header.Get("HX-Redirect") != "/login" {
		t.Fatalf("htmx without a session: %d %q", res.StatusCode, res.Header.Get("HX-Redirect"))
	}
	// The events stream needs a session too.
	if res, _ := w.do("GET", "/spots/acme/events", nil, nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("events without a session: %d", res.StatusCode)
	}

	// A spot token sees its spot only.
	w.signIn(acmeToken)
	var cookie *http.Cookie
	u, _ := url.Parse(base)
	for _, c := range w.hc.Jar.Cookies(u) {
		if c.Name == "sg_session" {
			cookie = c
		}
	}
	if cookie == nil || strings.Contains(cookie.Value, acmeToken) {
		t.Fatalf("session cookie %v: missing, or holds the token in clear", cookie)
	}
	res, body := w.do("GET", "/", nil, nil)
	if res.StatusCode != 200 || !strings.Contains(body, `data-spot="acme"`) || strings.Contains(body, `data-spot="globex"`) {
		t.Fatalf("acme's token: landing page %d shows other spots or not acme", res.StatusCode)
	}
	if res, _ := w.do("GET", "/spots/globex/groups/paying-teams", nil, nil); res.StatusCode != http.StatusForbidden {
		t.Fatalf("acme's token on a globex group: %d, want 403", res.StatusCode)
	}
	if res, _ := w.do("GET", "/spots/globex/events", nil, nil); res.StatusCode != http.StatusForbidden {
		t.Fatalf("acme's token on globex's events: %d, want 403", res.StatusCode)
	}

	// Writes need the page's CSRF token and this site as origin.
	_, page := w.do("GET", "/spots/acme/groups/paying-teams/members", nil, nil)
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no CSRF token on the members page")
	}
	form := url.Values{"member": {"m00001"}, "op": {"add"}}
	if res, _ := w.do("POST", "/spots/acme/groups/paying-teams/blacklist", form, nil); res.StatusCode != http.StatusForbidden {
		t.Fatalf("a write without the CSRF token: %d, want 403", res.StatusCode)
	}
	form.Set("csrf", m[1])
	if res, _ := w.do("POST", "/spots/acme/groups/paying-teams/blacklist", form, map[string]string{"Origin": "http://evil.example"}); res.StatusCode != http.StatusForbidden {
		t.Fatalf("a write from another origin: %d, want 403", res.StatusCode)
	}
	other := newWeb(t, base)
	other.signIn(acmeToken)
	if res, _ := other.do("POST", "/spots/acme/groups/paying-teams/blacklist", form, nil); res.StatusCode != http.StatusForbidden {
		t.Fatalf("another session's CSRF token: %d, want 403", res.StatusCode)
	}
	res, _ = w.do("POST", "/spots/acme/groups/paying-teams/blacklist", form, map[string]string{"Origin": base})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("blacklisting with the CSRF token: %d", res.StatusCode)
	}
	var bl struct {
		Items []struct{ Member string } `json:"items"`
	}
	apiJSON(t, base, "GET", "/v1/spots/acme/groups/paying-teams/blacklist", nil, &bl)
	if len(bl.Items) != 1 || bl.Items[0].Member != "m00001" {
		t.Fatalf("blacklist after the console's write: %+v", bl.Items)
	}

	// Signing out ends the session.
	if res, _ := w.do("POST", "/logout", url.Values{"csrf": {m[1]}}, nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: %d", res.StatusCode)
	}
	if res, _ := w.do("GET", "/", nil, nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("after signing out: %d, want a redirect to the sign-in form", res.StatusCode)
	}
}
