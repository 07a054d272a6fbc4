package console

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// sessionCookie is the name of the session cookie.
const sessionCookie = "sg_session"

// sessionTTL is how long a sign-in lasts.
const sessionTTL = 12 * time.Hour

// session is what the sealed session cookie holds: the API token the
// browser signed in with (empty when the API needs none), a random nonce
// the CSRF token derives from, and the expiry.
type session struct {
	Token   string `json:"t"`
	Nonce   string `json:"n"`
	Expires int64  `json:"e"`
}

// sealer seals and opens session cookies with AES-GCM. The key derives
// from the configured tokens (every instance of a deployment shares them,
// so any instance opens a cookie another one sealed), or is random per
// process when the API has no token.
type sealer struct {
	aead cipher.AEAD
	mac  []byte
}

func newSealer(secret []byte) (*sealer, error) {
	if len(secret) == 0 {
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, fmt.Errorf("console: session key: %w", err)
		}
	}
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(label))
		return m.Sum(nil)
	}
	block, err := aes.NewCipher(derive("smartgroups console session"))
	if err != nil {
		return nil, fmt.Errorf("console: session cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("console: session cipher: %w", err)
	}
	return &sealer{aead: aead, mac: derive("smartgroups console csrf")}, nil
}

// SecretFromTokens derives the session secret from the API's tokens:
// the admin token and every "<spot>:<token>" pair. It is empty when there
// is no token (the console then uses a random key per process).
func SecretFromTokens(admin string, spotTokens []string) []byte {
	if admin == "" && len(spotTokens) == 0 {
		return nil
	}
	h := sha256.New()
	h.Write([]byte("smartgroups console\x00" + admin))
	for _, s := range spotTokens {
		h.Write([]byte("\x00" + s))
	}
	return h.Sum(nil)
}

func (s *sealer) seal(sess session) (string, error) {
	plain, err := json.Marshal(sess)
	if err != nil {
		return "", fmt.Errorf("console: session: %w", err)
	}
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("console: session nonce: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte(sessionCookie))), nil
}

var errNoSession = errors.New("console: no valid session")

func (s *sealer) open(v string, now time.Time) (session, error) {
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(b) < s.aead.NonceSize() {
		return session{}, errNoSession
	}
	plain, err := s.aead.Open(nil, b[:s.aead.NonceSize()], b[s.aead.NonceSize():], []byte(sessionCookie))
	if err != nil {
		return session{}, errNoSession
	}
	var sess session
	if json.Unmarshal(plain, &sess) != nil || now.Unix() > sess.Expires {
		return session{}, errNoSession
	}
	return sess, nil
}

// csrf is the CSRF token of a session: an HMAC of its nonce. Pages carry
// it; every write must send it back (X-CSRF-Token header or csrf field).
func (s *sealer) csrf(sess session) string {
	m := hmac.New(sha256.New, s.mac)
	m.Write([]byte(sess.Nonce))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *sealer) checkCSRF(sess session, got string) bool {
	want := s.csrf(sess)
	return got != "" && subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}

func newNonce() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// secure reports whether the browser reached the console over HTTPS
// (directly, or through a proxy that says so).
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func (c *Console) setSession(w http.ResponseWriter, r *http.Request, sess session) error {
	v, err := c.sealer.seal(sess)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: v, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: secure(r), Expires: time.Unix(sess.Expires, 0)})
	return nil
}

func clearSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: secure(r), MaxAge: -1})
}

// sameOrigin reports whether a write comes from a page of this console:
// browsers send Origin on POST; when present it must name this host.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return o == ""
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}
