package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"sync"
	"time"
)

const (
	sessionCookie = "clinicbox_session"
	// sessionIdle ends a session nobody used for this long; the page's
	// own polling keeps an open page in use.
	sessionIdle = 2 * time.Hour
	// sessionMax ends a session this long after its sign-in, however
	// busy: a page left open on a front-desk PC does not stay signed in
	// for good.
	sessionMax = 12 * time.Hour
	// Wrong passwords: after maxFailures in a row from one address, that
	// address waits lockout before trying again.
	maxFailures = 5
	lockout     = time.Minute
)

// sessions are the LAN's logged-in browsers, in memory: a restart of the
// box logs everyone out, which is acceptable for a page staff visit now
// and then. A session belongs to the password it signed in with: when
// the password changes (reset at the box, set again), it ends.
type sessions struct {
	now func() time.Time
	// password identifies the current box password; "" when none is set.
	password func() string

	mu       sync.Mutex
	seen     map[string]session // session ID -> session
	failures map[string]failure // remote host -> wrong passwords
}

type session struct {
	started, last time.Time
	password      string // the password's identity at sign-in
}

// live reports whether the session may still be used at now with the
// password identified by pw.
func (e session) live(now time.Time, pw string) bool {
	return pw != "" && e.password == pw && now.Sub(e.last) <= sessionIdle && now.Sub(e.started) <= sessionMax
}

type failure struct {
	count int
	last  time.Time
}

func newSessions(now func() time.Time, password func() string) *sessions {
	return &sessions{now: now, password: password, seen: map[string]session{}, failures: map[string]failure{}}
}

// start makes a session and sets its cookie. The cookie is Secure: the
// LAN pages are served over HTTPS only.
func (s *sessions) start(w http.ResponseWriter) string {
	b := make([]byte, 32)
	rand.Read(b)
	id := base64.RawURLEncoding.EncodeToString(b)
	pw := s.password()
	s.mu.Lock()
	now := s.now()
	for old, e := range s.seen {
		if !e.live(now, pw) {
			delete(s.seen, old)
		}
	}
	s.seen[id] = session{started: now, last: now, password: pw}
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return id
}

// lookup returns the request's live session ID and refreshes it, or "".
func (s *sessions) lookup(r *http.Request) string {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return ""
	}
	pw := s.password()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	e, ok := s.seen[c.Value]
	if !ok || !e.live(now, pw) {
		delete(s.seen, c.Value)
		return ""
	}
	e.last = now
	s.seen[c.Value] = e
	return c.Value
}

// end forgets the session and clears its cookie.
func (s *sessions) end(w http.ResponseWriter, id string) {
	s.mu.Lock()
	delete(s.seen, id)
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

// clear ends every session.
func (s *sessions) clear() {
	s.mu.Lock()
	clear(s.seen)
	s.mu.Unlock()
}

// csrfToken is the token a principal (a LAN session, or a tailnet
// caller) must send with every POST: an HMAC under the server's key, so it
// needs no storage and cannot be guessed across principals.
func (s *Server) csrfToken(principal string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(principal))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// csrfOK reports whether r carries the principal's token in the
// X-CSRF-Token header or the csrf form field.
func (s *Server) csrfOK(r *http.Request, principal string) bool {
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostFormValue("csrf")
	}
	return principal != "" && hmac.Equal([]byte(got), []byte(s.csrfToken(principal)))
}
