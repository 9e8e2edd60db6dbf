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
	// sessionIdle ends a session nobody used for this long.
	sessionIdle = 12 * time.Hour
	// Wrong passwords: after maxFailures in a row from one address, that
	// address waits lockout before trying again.
	maxFailures = 5
	lockout     = time.Minute
)

// sessions are the LAN's logged-in browsers, in memory: a restart of the
// box logs everyone out, which is acceptable for a page staff visit now
// and then.
type sessions struct {
	now func() time.Time

	mu       sync.Mutex
	seen     map[string]time.Time // session ID -> last use
	failures map[string]failure   // remote host -> wrong passwords
}

type failure struct {
	count int
	last  time.Time
}

func newSessions(now func() time.Time) *sessions {
	return &sessions{now: now, seen: map[string]time.Time{}, failures: map[string]failure{}}
}

// start makes a session and sets its cookie.
func (s *sessions) start(w http.ResponseWriter) string {
	b := make([]byte, 32)
	rand.Read(b)
	id := base64.RawURLEncoding.EncodeToString(b)
	s.mu.Lock()
	now := s.now()
	for old, last := range s.seen {
		if now.Sub(last) > sessionIdle {
			delete(s.seen, old)
		}
	}
	s.seen[id] = now
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return id
}

// lookup returns the request's live session ID and refreshes it, or "".
func (s *sessions) lookup(r *http.Request) string {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	last, ok := s.seen[c.Value]
	if !ok || now.Sub(last) > sessionIdle {
		delete(s.seen, c.Value)
		return ""
	}
	s.seen[c.Value] = now
	return c.Value
}

// end forgets the session and clears its cookie.
func (s *sessions) end(w http.ResponseWriter, id string) {
	s.mu.Lock()
	delete(s.seen, id)
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
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
