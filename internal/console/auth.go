package console

import (
	"net/http"
	"strings"
)

type loginData struct {
	Next  string
	Error string
}

func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}

func (c *Console) loginForm(w http.ResponseWriter, r *http.Request) {
	if c.cfg.Open {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	c.render(w, http.StatusOK, "login.html", loginData{Next: safeNext(r.URL.Query().Get("next"))})
}

// login checks the token with the API (GET /v1/spots: 200 for a valid
// token) and sets the session cookie.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.PostFormValue("next"))
	if !sameOrigin(r) {
		http.Error(w, "sign-in from another site refused", http.StatusForbidden)
		return
	}
	token := strings.TrimSpace(r.PostFormValue("token"))
	if token == "" {
		c.render(w, http.StatusBadRequest, "login.html", loginData{Next: next, Error: "Enter an API token."})
		return
	}
	res := c.callAPI(r.Context(), token, r.RemoteAddr, http.MethodGet, "/v1/spots", nil)
	if !res.ok() {
		msg := "This token is not valid."
		if e := res.err(); e != nil && res.Status != http.StatusUnauthorized {
			msg = e.Message
		}
		c.render(w, http.StatusUnauthorized, "login.html", loginData{Next: next, Error: msg})
		return
	}
	sess := session{Token: token, Nonce: newNonce(), Expires: c.cfg.Now().Add(sessionTTL).Unix()}
	if err := c.setSession(w, r, sess); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if sess, err := c.session(r); err == nil && (!sameOrigin(r) || !c.sealer.checkCSRF(sess, r.PostFormValue("csrf"))) {
		http.Error(w, "this form is stale or comes from another site", http.StatusForbidden)
		return
	}
	clearSession(w, r)
	to := "/login"
	if c.cfg.Open {
		to = "/"
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}
