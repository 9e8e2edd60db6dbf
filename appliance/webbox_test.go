package appliance

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/appliance/web"
)

// The pages' actions reach the appliance, and the diagnostic bundle holds
// the box's state without the database password.
func TestWebBoxActsAndBundles(t *testing.T) {
	r := newRig(t, time.Date(2026, 3, 2, 7, 0, 0, 0, mustLoc(t, "America/Chicago")))
	if _, err := r.a.NewWeb(r.sim, nil); err != nil {
		t.Fatal(err)
	}
	r.enroll("blue")
	box := WebBox{r.a}
	by := web.Caller{Via: "lan", Addr: "192.0.2.7:5000"}
	if err := box.Act(context.Background(), web.Action{Name: web.ActDrill, By: by}); err == nil || !strings.Contains(err.Error(), "clinicctl drill") {
		t.Errorf("drill on the box: got %v; want a plain refusal that says where drills run", err)
	}
	if err := box.Act(context.Background(), web.Action{Name: web.ActEject, By: by}); err != nil {
		t.Fatal(err)
	}
	st := r.wait("safe to remove", func(st status.Status) bool { return st.InBox != nil && st.InBox.Activity == "safe to remove" })
	if !strings.Contains(st.Events[0].Message+st.Events[1].Message, "lan:192.0.2.7") {
		t.Errorf("the eject does not name who asked: %v", st.Events[:2])
	}
	var buf bytes.Buffer
	if err := box.Bundle(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	names := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names[h.Name] = true
		b, _ := io.ReadAll(tr)
		if bytes.Contains(b, []byte("clinicbox-test-pw")) || bytes.Contains(b, []byte("AGE-SECRET-KEY")) {
			t.Errorf("%s in the bundle holds a secret", h.Name)
		}
	}
	for _, want := range []string{"status.json", "settings.json", "rotation.json", "custody.jsonl"} {
		if !names[want] {
			t.Errorf("bundle lacks %s (has %v)", want, names)
		}
	}
}

// A press of the button opens the first setting of the page's password;
// holding it ten seconds clears the password: browsers that were logged
// in are logged out, the next visit sets a new password, and the audit log
// and the events say it happened at the box.
func TestButtonResetsPagePassword(t *testing.T) {
	r := newRig(t, time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC))
	pages, err := r.a.NewWeb(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(pages.LAN())
	srv.Listener = web.SplitTLS(srv.Listener, pages.Cert().TLSConfig())
	srv.Start()
	defer srv.Close()
	srv.URL = strings.Replace(srv.URL, "http://", "https://", 1)
	jar, _ := cookiejar.New(nil)
	roots := x509.NewCertPool()
	roots.AddCert(pages.Cert().TLS.Leaf)
	c := &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(path string, form url.Values) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", srv.URL)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	get := func(path string) *http.Response {
		t.Helper()
		resp, err := c.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := post("/setup", url.Values{"password": {"first-password-1"}, "confirm": {"first-password-1"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("setting the first password before the button was pressed: %s; want 403", resp.Status)
	}
	r.button <- Ack
	r.wait("setup opened by the button", func(st status.Status) bool {
		for _, ev := range st.Events {
			if strings.Contains(ev.Message, "Setup open") {
				return true
			}
		}
		return false
	})
	if resp := post("/setup", url.Values{"password": {"first-password-1"}, "confirm": {"first-password-1"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("setting the first password: %s", resp.Status)
	}
	if resp := get("/api/status"); resp.StatusCode != http.StatusOK {
		t.Fatalf("logged in, /api/status: %s", resp.Status)
	}

	r.button <- ResetPassword
	r.wait("the reset recorded", func(st status.Status) bool {
		return len(st.Events) > 0 && strings.Contains(st.Events[0].Message, "password was cleared at the box")
	})
	if resp := get("/api/status"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("after the reset the old session got %s; want 401", resp.Status)
	}
	if resp := get("/login"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/setup" {
		t.Errorf("after the reset /login answered %s to %q; want a redirect to /setup", resp.Status, resp.Header.Get("Location"))
	}
	if resp := post("/setup", url.Values{"password": {"second-password-2"}, "confirm": {"second-password-2"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("setting the new password: %s", resp.Status)
	}
	if resp := get("/api/status"); resp.StatusCode != http.StatusOK {
		t.Errorf("with the new password, /api/status: %s", resp.Status)
	}
	al, err := os.ReadFile(r.a.path("audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(al), `"action":"reset password"`) || !strings.Contains(string(al), "button held 10 s") {
		t.Errorf("the audit log does not record the reset at the box:\n%s", al)
	}
}
