package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/clinicbox/clinicbox/appliance/web"
)

// TestHostChecked: a page on another web site whose name was made to
// resolve to the box (DNS rebinding) is refused on both listeners before
// any handler runs; the box's own names and addresses are served.
func TestHostChecked(t *testing.T) {
	e := newEnv(t, func(c *web.Config) {
		c.Hosts = func() []string {
			return []string{"clinicbox", "clinicbox.local.", "CLINICBOX.clinic.ts.net", "192.168.1.20", "100.64.0.1", "fd7a:115c:a1e0::1"}
		}
	})
	lan := e.staff()
	admin := e.peer("127.0.0.3")
	tests := []struct {
		name    string
		c       *client
		path    string
		host    string
		refused bool
	}{
		{"lan, rebound name", lan, "/api/status", "evil.example", true},
		{"lan, rebound name with port", lan, "/api/status", "evil.example:8080", true},
		{"lan, static file under a rebound name", lan, "/static/style.css", "evil.example", true},
		{"lan, another address", lan, "/api/status", "192.168.1.21:8080", true},
		{"tailnet, rebound name", admin, "/api/status", "evil.example", true},
		{"tailnet, a name like the box's", admin, "/api/status", "clinicbox.evil.example", true},
		{"lan, loopback address", lan, "/api/status", "127.0.0.1", false},
		{"lan, localhost", lan, "/api/status", "localhost:8080", false},
		{"lan, host name", lan, "/api/status", "clinicbox:8080", false},
		{"lan, .local name", lan, "/api/status", "ClinicBox.local", false},
		{"lan, its address", lan, "/api/status", "192.168.1.20:8080", false},
		{"tailnet, loopback address", admin, "/api/status", "[::1]:80", false},
		{"tailnet, MagicDNS name", admin, "/api/status", "clinicbox.clinic.ts.net.", false},
		{"tailnet, tailnet address", admin, "/api/status", "[fd7a:115c:a1e0::1]:80", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest("GET", tt.c.base+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = tt.host
			res := tt.c.do(req)
			if refused := res.code == http.StatusMisdirectedRequest; refused != tt.refused {
				t.Errorf("Host %q: got %d %s; want refused %v (421)", tt.host, res.code, res.body, tt.refused)
			}
			if !tt.refused {
				return
			}
			if !strings.Contains(res.body, "is not the box") {
				t.Errorf("got %q; want it to say the address is not the box's", res.body)
			}
			if rec := e.lastAudit(); rec.Allowed || !strings.Contains(rec.Why, "not the box's") {
				t.Errorf("audit: got %+v; want the request refused for its name", rec)
			}
		})
	}
}

// TestBodyBounded: no request body the pages read may be larger than a
// form needs: a setup whose form is padded past the bound is refused,
// though its password and code are right.
func TestBodyBounded(t *testing.T) {
	e := newEnv(t)
	c := e.lanClient()
	form := url.Values{"password": {"correct horse battery"}, "confirm": {"correct horse battery"}, "code": {e.setupCode()},
		"padding": {strings.Repeat("x", 200<<10)}}
	if res := c.post("/setup", form, nil); res.code == http.StatusSeeOther {
		t.Fatalf("setup with a 200 KB form: got %d; want it refused", res.code)
	}
	form.Del("padding")
	if res := c.post("/setup", form, nil); res.code != http.StatusSeeOther {
		t.Errorf("setup with an ordinary form: got %d %s; want 303", res.code, res.body)
	}
}
