package web_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
)

func TestTailnetRoles(t *testing.T) {
	const (
		support  = "127.0.0.2" // tag:support
		admin    = "127.0.0.3" // it@practice.example
		stranger = "127.0.0.4" // a login with no role
		unknown  = "127.0.0.5" // WhoIs knows nothing
	)
	tests := []struct {
		name    string
		from    string
		consent bool
		method  string // GET path, or an action name to POST
		target  string
		code    int
		says    string
		caller  string
	}{
		{"support reads status", support, false, "GET", "/api/status", 200, "", "tailnet:helpdesk-laptop.clinic.ts.net"},
		{"support reads custody", support, false, "GET", "/api/custody", 200, "", "tailnet:helpdesk-laptop.clinic.ts.net"},
		{"support reads audit", support, false, "GET", "/api/audit", 200, "", "tailnet:helpdesk-laptop.clinic.ts.net"},
		{"support reads page", support, false, "GET", "/", 200, "Swap the backup drive", "tailnet:helpdesk-laptop.clinic.ts.net"},
		{"support metrics", support, false, "GET", "/metrics", 200, "clinicbox_severity 2", "tailnet:helpdesk-laptop.clinic.ts.net"},
		{"support backup without consent", support, false, "POST", "backup", 403, "has not opened a support window", "tailnet:helpdesk-laptop.clinic.ts.net"},
		{"support bundle without consent", support, false, "GET", "/api/bundle", 403, "press and hold the button", "tailnet:helpdesk-laptop.clinic.ts.net"},
		{"support backup with consent", support, true, "POST", "backup", 200, "", "tailnet:helpdesk-laptop.clinic.ts.net"},
		{"support drill with consent", support, true, "POST", "drill", 200, "", "tailnet:helpdesk-laptop.clinic.ts.net"},
		{"support bundle with consent", support, true, "GET", "/api/bundle", 200, "", "tailnet:helpdesk-laptop.clinic.ts.net"},
		{"support eject with consent", support, true, "POST", "eject", 403, "done at the practice", "tailnet:helpdesk-laptop.clinic.ts.net"},
		{"support opens own window", support, false, "POST", "consent", 403, "done at the practice", "tailnet:helpdesk-laptop.clinic.ts.net"},
		{"support plugs sim drive", support, true, "POST", "plug", 403, "done at the practice", "tailnet:helpdesk-laptop.clinic.ts.net"},
		{"admin acts without consent", admin, false, "POST", "acknowledge", 200, "", "tailnet:it-desktop.clinic.ts.net (it@practice.example)"},
		{"stranger reads", stranger, false, "GET", "/api/status", 403, "no role on the box", "tailnet:phone.clinic.ts.net (stranger@example.com)"},
		{"stranger page", stranger, false, "GET", "/", 403, "no role on the box", "tailnet:phone.clinic.ts.net (stranger@example.com)"},
		{"unidentified", unknown, false, "GET", "/api/status", 403, "could not identify", "tailnet:127.0.0.5"},
		{"no setup on tailnet", admin, false, "GET", "/setup", 404, "", "tailnet:it-desktop.clinic.ts.net (it@practice.example)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if tt.consent {
				e.box.Update(func(st *status.Status) { st.Support.ConsentUntil = start.Add(2 * time.Hour) })
			}
			c := e.peer(tt.from)
			c.session()
			var res response
			if tt.method == "GET" {
				res = c.get(tt.target)
			} else {
				res = c.act(tt.target, "Son")
			}
			if res.code != tt.code || !strings.Contains(res.body, tt.says) {
				t.Errorf("got %d %.200q; want %d mentioning %q", res.code, res.body, tt.code, tt.says)
			}
			rec := e.lastAudit()
			if rec.Caller != tt.caller || rec.Allowed != (tt.code == http.StatusOK) {
				t.Errorf("audit: got %q allowed=%v (%s); want %q allowed=%v", rec.Caller, rec.Allowed, rec.Why, tt.caller, tt.code == 200)
			}
			if tt.method == "POST" {
				acts := e.box.Acts()
				performed := len(acts) > 0 && acts[len(acts)-1].Name == tt.target
				if performed != (tt.code == http.StatusOK) {
					t.Errorf("got performed=%v; want %v", performed, tt.code == http.StatusOK)
				}
				if rec.Action != tt.target {
					t.Errorf("audit action: got %q; want %q", rec.Action, tt.target)
				}
				if performed && acts[len(acts)-1].By.Via != "tailnet" {
					t.Errorf("act by: got %+v; want a tailnet caller", acts[len(acts)-1].By)
				}
			}
		})
	}
}

func TestConsentWindowEnds(t *testing.T) {
	e := newEnv(t)
	staff := e.staff()
	if res := staff.act("consent", "1"); res.code != http.StatusOK {
		t.Fatalf("consent: got %d %s; want 200", res.code, res.body)
	}
	if rec := e.lastAudit(); rec.Action != "consent" || !rec.Allowed || rec.Role != "staff" {
		t.Errorf("audit: got %+v; want an allowed consent by staff", rec)
	}
	sup := e.peer("127.0.0.2")
	sup.session()
	if res := sup.act("backup", ""); res.code != http.StatusOK {
		t.Errorf("inside the window: got %d %s; want 200", res.code, res.body)
	}
	e.clock.Advance(61 * time.Minute)
	if res := sup.act("backup", ""); res.code != http.StatusForbidden {
		t.Errorf("after the window: got %d; want 403", res.code)
	}
	if res := staff.act("consent", "1000"); res.code != http.StatusConflict || !strings.Contains(res.body, "from 0.5 to 72") {
		t.Errorf("a box refusal: got %d %s; want 409 with the box's reason", res.code, res.body)
	}
	if rec := e.lastAudit(); !rec.Allowed || !strings.Contains(rec.Why, "did not happen") {
		t.Errorf("audit of a failed action: got allowed=%v %q; want allowed, saying it did not happen", rec.Allowed, rec.Why)
	}
}

func TestTailnetCSRF(t *testing.T) {
	e := newEnv(t)
	c := e.peer("127.0.0.3")
	if res := c.act("acknowledge", ""); res.code != http.StatusForbidden {
		t.Errorf("admin without token: got %d; want 403", res.code)
	}
	lan := e.staff()
	c.csrf = lan.csrf
	if res := c.act("acknowledge", ""); res.code != http.StatusForbidden {
		t.Errorf("admin with a LAN session's token: got %d; want 403", res.code)
	}
	if len(e.box.Acts()) != 0 {
		t.Errorf("got %d actions; want none", len(e.box.Acts()))
	}
}
