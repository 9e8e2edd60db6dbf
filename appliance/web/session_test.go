package web_test

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A session ends 12 hours after its sign-in even while it is used all
// the time (a page left open polls every two seconds).
func TestSessionLifetime(t *testing.T) {
	e := newEnv(t)
	c := e.staff()
	for h := 1; h <= 11; h++ {
		e.clock.Advance(time.Hour)
		if res := c.get("/api/status"); res.code != http.StatusOK {
			t.Fatalf("%d hours after sign-in, used every hour: got %d; want 200", h, res.code)
		}
	}
	e.clock.Advance(time.Hour + time.Second)
	if res := c.get("/api/status"); res.code != http.StatusUnauthorized {
		t.Errorf("12 hours after sign-in, used every hour: got %d; want 401", res.code)
	}
}

// Every session ends when the box password changes, however it changes.
func TestSessionEndsWithPassword(t *testing.T) {
	tests := []struct {
		name   string
		change func(e *env)
	}{
		{"reset at the box and set again", func(e *env) {
			if err := e.srv.ResetPassword("button"); err != nil {
				e.t.Fatal(err)
			}
			e.lanClient().post("/setup", url.Values{"password": {"a new password here"}, "confirm": {"a new password here"}}, nil)
		}},
		{"password file replaced", func(e *env) {
			other := newEnv(e.t)
			other.staff()
			b, err := os.ReadFile(filepath.Join(other.state, "web-password"))
			if err != nil {
				e.t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(e.state, "web-password"), b, 0o600); err != nil {
				e.t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			c := e.staff()
			if res := c.get("/api/status"); res.code != http.StatusOK {
				t.Fatalf("before the change: got %d; want 200", res.code)
			}
			tt.change(e)
			if res := c.get("/api/status"); res.code != http.StatusUnauthorized {
				t.Errorf("after the change: got %d; want 401", res.code)
			}
		})
	}
}
