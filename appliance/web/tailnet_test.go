package web_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/web"
	"github.com/clinicbox/clinicbox/drivers/tailnet"
	"github.com/clinicbox/clinicbox/drivers/tailnet/tailnettest"
)

// TestTailnetThroughTsnet serves the tailnet handler on a real tsnet node
// joined to an in-process coordination server, and calls it from a
// tagged support node and an untagged laptop.
func TestTailnetThroughTsnet(t *testing.T) {
	tn := tailnettest.New(t)
	boxNode := tn.Node(t, "clinicbox", "tag:clinicbox")
	support := tn.Node(t, "helpdesk", "tag:support")
	laptop := tn.Node(t, "laptop")

	e := newEnv(t, func(c *web.Config) {
		c.Roles = web.Roles{Support: []string{"tag:support"}}
		c.WhoIs = func(ctx context.Context, addr string) (web.Caller, error) {
			p, err := boxNode.WhoIs(ctx, addr)
			return web.Caller{Node: p.Node, Login: p.Login, Tags: p.Tags}, err
		}
		c.Hosts = func() []string {
			names, _ := boxNode.Names(context.Background())
			return names
		}
	})
	ln, err := boxNode.Listen(":80")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: e.srv.Tailnet()}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	call := func(n *tailnet.Node, method, path, token string) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, method, "http://clinicbox"+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("X-CSRF-Token", token)
		}
		res, err := n.HTTPClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}

	t.Run("support reads status", func(t *testing.T) {
		code, body := call(support, "GET", "/api/status", "")
		if code != http.StatusOK || !strings.Contains(body, `"expected": "Father"`) {
			t.Errorf("got %d %.200s; want 200 with the status", code, body)
		}
		rec := e.lastAudit()
		if rec.Caller != "tailnet:helpdesk.clinic.ts.net" || rec.Role != "support" || !rec.Allowed || strings.Join(rec.Tags, ",") != "tag:support" {
			t.Errorf("audit: got %+v; want an allowed read by the tagged support node", rec)
		}
	})
	t.Run("untagged peer refused", func(t *testing.T) {
		code, body := call(laptop, "GET", "/api/status", "")
		if code != http.StatusForbidden || !strings.Contains(body, "no role on the box") {
			t.Errorf("got %d %s; want 403 saying it has no role", code, body)
		}
		rec := e.lastAudit()
		if rec.Allowed || rec.Login == "" || !strings.HasPrefix(rec.Caller, "tailnet:laptop.clinic.ts.net (") {
			t.Errorf("audit: got %+v; want a refused request naming the laptop and its login", rec)
		}
	})
	t.Run("support action without consent", func(t *testing.T) {
		_, body := call(support, "GET", "/api/session", "")
		token := decode[struct{ CSRF string }](t, body).CSRF
		code, body := call(support, "POST", "/api/actions/backup", token)
		if code != http.StatusForbidden || !strings.Contains(body, "press and hold the button for 3 seconds") {
			t.Errorf("got %d %s; want 403 saying how to open a support window", code, body)
		}
		rec := e.lastAudit()
		if rec.Action != "backup" || rec.Allowed || rec.Role != "support" || !strings.Contains(rec.Why, "support window") {
			t.Errorf("audit: got %+v; want a refused backup by support, with why", rec)
		}
		if n := len(e.box.Acts()); n != 0 {
			t.Errorf("got %d actions; want none", n)
		}
	})
	t.Run("support action after the front desk consents", func(t *testing.T) {
		if res := e.staff().act("consent", "2"); res.code != http.StatusOK {
			t.Fatalf("consent on the LAN: got %d %s", res.code, res.body)
		}
		_, body := call(support, "GET", "/api/session", "")
		token := decode[struct{ CSRF string }](t, body).CSRF
		if code, body := call(support, "POST", "/api/actions/backup", token); code != http.StatusOK {
			t.Errorf("got %d %s; want 200", code, body)
		}
		acts := e.box.Acts()
		if n := len(acts); n != 2 || acts[1].Name != "backup" || acts[1].By.String() != "tailnet:helpdesk.clinic.ts.net" {
			t.Errorf("got acts %+v; want consent, then a backup by the support node", acts)
		}
	})
}
