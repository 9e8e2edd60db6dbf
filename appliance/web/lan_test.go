package web_test

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFirstRunSetsPassword(t *testing.T) {
	e := newEnv(t)
	c := e.lanClient()
	for _, path := range []string{"/", "/custody", "/login"} {
		if res := c.get(path); res.code != http.StatusSeeOther || res.header.Get("Location") != "/setup" {
			t.Errorf("GET %s before setup: got %d to %q; want 303 to /setup", path, res.code, res.header.Get("Location"))
		}
	}
	if res := c.get("/api/status"); res.code != http.StatusUnauthorized || !strings.Contains(res.body, "set the box password") {
		t.Errorf("API before setup: got %d %s; want 401 saying to set the password", res.code, res.body)
	}
	if res := c.get("/setup"); res.code != http.StatusOK || !strings.Contains(res.body, "Set the box password") {
		t.Errorf("setup page: got %d; want 200 with the form", res.code)
	}
	tests := []struct {
		name, pw, confirm string
		code              int
		says              string
	}{
		{"different", "correct horse battery", "correct horse batery", http.StatusBadRequest, "not the same"},
		{"short", "short", "short", http.StatusBadRequest, "at least 10"},
		{"good", "correct horse battery", "correct horse battery", http.StatusSeeOther, ""},
		{"again", "another long password", "another long password", http.StatusConflict, "already set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := c.post("/setup", url.Values{"password": {tt.pw}, "confirm": {tt.confirm}, "code": {e.setupCode()}}, nil)
			if res.code != tt.code || !strings.Contains(res.body, tt.says) {
				t.Errorf("got %d %q; want %d mentioning %q", res.code, res.body, tt.code, tt.says)
			}
		})
	}
	// The first good setup logged this browser in.
	if res := c.get("/"); res.code != http.StatusOK || !strings.Contains(res.body, "Swap the backup drive") {
		t.Errorf("GET / after setup: got %d; want 200 with the headline", res.code)
	}
	st, err := os.Stat(filepath.Join(e.state, "web-password"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(e.state, "web-password"))
	if st.Mode().Perm() != 0o600 || !strings.HasPrefix(string(b), "$argon2id$") || strings.Contains(string(b), "horse") {
		t.Errorf("password file: got mode %v, %q; want 0600 holding an argon2id hash only", st.Mode().Perm(), b)
	}
}

func TestSessionCookie(t *testing.T) {
	e := newEnv(t)
	c := e.lanClient()
	res := c.post("/setup", url.Values{"password": {"correct horse battery"}, "confirm": {"correct horse battery"}, "code": {e.setupCode()}}, nil)
	cookies := (&http.Response{Header: res.header}).Cookies()
	if len(cookies) != 1 {
		t.Fatalf("got %d cookies; want 1", len(cookies))
	}
	ck := cookies[0]
	if !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" {
		t.Errorf("got Secure %v HttpOnly %v SameSite %v Path %q; want Secure, HttpOnly, Strict, /", ck.Secure, ck.HttpOnly, ck.SameSite, ck.Path)
	}
	// A session unused for longer than its idle time ends.
	e.clock.Advance(3 * time.Hour)
	if res := c.get("/api/status"); res.code != http.StatusUnauthorized {
		t.Errorf("after 3 idle hours: got %d; want 401", res.code)
	}
}

func TestLogin(t *testing.T) {
	e := newEnv(t)
	e.staff()
	c := e.lanClient()
	if res := c.get("/"); res.code != http.StatusSeeOther || res.header.Get("Location") != "/login" {
		t.Fatalf("new browser: got %d to %q; want 303 to /login", res.code, res.header.Get("Location"))
	}
	login := func(pw string) int { return c.post("/login", url.Values{"password": {pw}}, nil).code }
	if got := login("wrong password!"); got != http.StatusUnauthorized {
		t.Errorf("wrong password: got %d; want 401", got)
	}
	if rec := e.lastAudit(); rec.Action != "login" || rec.Allowed || rec.Why != "wrong password" || rec.Caller != "lan:127.0.0.1" {
		t.Errorf("audit: got %+v; want a refused login from lan:127.0.0.1", rec)
	}
	if res := c.get("/api/status"); res.code != http.StatusUnauthorized {
		t.Errorf("after a wrong password: got %d; want 401", res.code)
	}
	if got := login("correct horse battery"); got != http.StatusSeeOther {
		t.Errorf("right password: got %d; want 303", got)
	}
	if res := c.get("/api/status"); res.code != http.StatusOK {
		t.Errorf("after login: got %d; want 200", res.code)
	}
	c.session()
	if res := c.post("/logout", url.Values{"csrf": {c.csrf}}, nil); res.code != http.StatusSeeOther {
		t.Errorf("logout: got %d; want 303", res.code)
	}
	if res := c.get("/api/status"); res.code != http.StatusUnauthorized {
		t.Errorf("after logout: got %d; want 401", res.code)
	}
}

func TestLoginLockout(t *testing.T) {
	e := newEnv(t)
	e.staff()
	c := e.lanClient()
	for i := range 5 {
		if got := c.post("/login", url.Values{"password": {"guess"}}, nil).code; got != http.StatusUnauthorized {
			t.Fatalf("guess %d: got %d; want 401", i+1, got)
		}
	}
	if got := c.post("/login", url.Values{"password": {"correct horse battery"}}, nil).code; got != http.StatusTooManyRequests {
		t.Errorf("right password during lockout: got %d; want 429", got)
	}
	e.clock.Advance(61 * time.Second)
	if got := c.post("/login", url.Values{"password": {"correct horse battery"}}, nil).code; got != http.StatusSeeOther {
		t.Errorf("right password after lockout: got %d; want 303", got)
	}
}

func TestCSRF(t *testing.T) {
	e := newEnv(t)
	c := e.staff()
	tests := []struct {
		name   string
		header map[string]string
		code   int
	}{
		{"no token", nil, http.StatusForbidden},
		{"wrong token", map[string]string{"X-CSRF-Token": "forged"}, http.StatusForbidden},
		{"other site", map[string]string{"X-CSRF-Token": c.csrf, "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"other origin", map[string]string{"X-CSRF-Token": c.csrf, "Origin": "http://evil.example"}, http.StatusForbidden},
		{"token", map[string]string{"X-CSRF-Token": c.csrf, "Sec-Fetch-Site": "same-origin"}, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(e.box.Acts())
			res := c.post("/api/actions/acknowledge", nil, tt.header)
			if res.code != tt.code {
				t.Errorf("got %d %s; want %d", res.code, res.body, tt.code)
			}
			done := len(e.box.Acts()) - before
			if want := map[bool]int{true: 1, false: 0}[tt.code == http.StatusOK]; done != want {
				t.Errorf("got %d actions performed; want %d", done, want)
			}
			if rec := e.lastAudit(); rec.Allowed != (tt.code == http.StatusOK) {
				t.Errorf("audit: got allowed %v (%s); want %v", rec.Allowed, rec.Why, tt.code == http.StatusOK)
			}
		})
	}
	// Another session's token does not fit this one.
	other := e.lanClient()
	other.post("/login", url.Values{"password": {"correct horse battery"}}, nil)
	if res := other.act("acknowledge", ""); res.code != http.StatusForbidden {
		t.Errorf("no token of its own: got %d; want 403", res.code)
	}
	other.csrf = c.csrf
	if res := other.act("acknowledge", ""); res.code != http.StatusForbidden {
		t.Errorf("another session's token: got %d; want 403", res.code)
	}
}
