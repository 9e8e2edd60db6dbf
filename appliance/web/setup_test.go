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

// TestSetupNeedsTheBox: a visitor on the practice network cannot claim a
// box whose password is not set yet; someone at the box can, by its
// button or by the code on its screen, and again after the button clears
// the password.
func TestSetupNeedsTheBox(t *testing.T) {
	e := newEnv(t)
	c := e.lanClient()
	code := e.setupCode()
	if len(code) != 11 {
		t.Fatalf("got setup code %q shown at the box; want XXXXX-XXXXX", code)
	}
	if res := c.get("/setup"); strings.Contains(res.body, code) || strings.Contains(res.body, "Setup open") {
		t.Errorf("the setup page shows the code or says setup is open; want neither")
	}
	set := func(code string) response {
		return c.post("/setup", url.Values{"password": {"correct horse battery"}, "confirm": {"correct horse battery"}, "code": {code}}, nil)
	}
	tests := []struct {
		name   string
		before func()
		code   string
		want   int
	}{
		{"no code", nil, "", http.StatusForbidden},
		{"wrong code", nil, "ABCDE-FGHJK", http.StatusForbidden},
		{"window over", func() { e.srv.OpenSetup("front desk (button)"); e.clock.Advance(11 * time.Minute) }, "", http.StatusForbidden},
		{"code typed loosely", nil, " " + strings.ToLower(strings.ReplaceAll(code, "-", "")) + " ", http.StatusSeeOther},
		{"the same code again", func() { e.srv.ResetPassword("front desk (button held 10 s)"); e.clock.Advance(11 * time.Minute) }, code, http.StatusForbidden},
		{"the button pressed", func() { e.srv.OpenSetup("front desk (button)") }, "", http.StatusSeeOther},
		{"set already", nil, "", http.StatusConflict},
		{"after the reset", func() { e.srv.ResetPassword("front desk (button held 10 s)") }, "", http.StatusSeeOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.before != nil {
				tt.before()
			}
			res := set(tt.code)
			if res.code != tt.want {
				t.Fatalf("got %d %q; want %d", res.code, res.body, tt.want)
			}
			if res.code == http.StatusForbidden && !strings.Contains(res.body, "press the button on the box") {
				t.Errorf("got %q; want it to say to press the button on the box", res.body)
			}
		})
	}
	if e.srv.OpenSetup("front desk (button)") {
		t.Errorf("OpenSetup with a password set: got true; want false")
	}
}

// TestSetupRefusedFromTheNetwork: without the box, nothing sets the
// password.
func TestSetupRefusedFromTheNetwork(t *testing.T) {
	e := newEnv(t)
	res := e.lanClient().post("/setup", url.Values{"password": {"correct horse battery"}, "confirm": {"correct horse battery"}}, nil)
	if res.code != http.StatusForbidden || !strings.Contains(res.body, "press the button on the box") {
		t.Errorf("setup from the network: got %d %q; want 403 saying to press the button on the box", res.code, res.body)
	}
	if _, err := os.Stat(filepath.Join(e.state, "web-password")); err == nil {
		t.Errorf("got a password set by a visitor on the network; want none")
	}
	if rec := e.lastAudit(); rec.Action != "set password" || rec.Allowed {
		t.Errorf("audit: got %+v; want a refused setting of the password", rec)
	}
}

// TestSetupOpenShown: while the button's window is open the page says so.
func TestSetupOpenShown(t *testing.T) {
	e := newEnv(t)
	e.srv.OpenSetup("front desk (button)")
	if res := e.lanClient().get("/setup"); !strings.Contains(res.body, "Setup open until 14:10") {
		t.Errorf("got %q; want it to say setup is open until 14:10", res.body)
	}
}
