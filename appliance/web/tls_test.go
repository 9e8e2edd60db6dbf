package web_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/web"
)

// Plain HTTP on the LAN port gets a redirect to HTTPS and nothing else:
// no page, no API answer, no cookie, whatever it asks and carries.
func TestLANPlainHTTPOnlyRedirects(t *testing.T) {
	e := newEnv(t)
	staff := e.staff()
	plainBase := strings.Replace(e.lan.URL, "https://", "http://", 1)
	host := strings.TrimPrefix(plainBase, "http://")
	tests := []struct{ method, path string }{
		{"GET", "/"},
		{"GET", "/setup"},
		{"POST", "/login"},
		{"GET", "/api/status"},
		{"GET", "/api/bundle"},
		{"GET", "/metrics"},
		{"GET", "/static/app.js"},
		{"POST", "/api/actions/eject?x=1"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, plainBase+tt.path, strings.NewReader("password=correct+horse+battery"))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-CSRF-Token", staff.csrf)
			for _, c := range staff.hc.Jar.Cookies(mustURL(t, e.lan.URL)) {
				req.AddCookie(c)
			}
			res := staff.do(req)
			if want := "https://" + host + tt.path; res.code != http.StatusMovedPermanently || res.header.Get("Location") != want {
				t.Errorf("got %d to %q; want 301 to %q", res.code, res.header.Get("Location"), want)
			}
			if c := res.header.Values("Set-Cookie"); len(c) != 0 {
				t.Errorf("got cookies %q; want none", c)
			}
			if strings.Contains(res.body, "clinicbox") || strings.Contains(res.body, "{") {
				t.Errorf("got body %q; want no page and no API answer", res.body)
			}
		})
	}
	if n := len(e.box.Acts()); n != 0 {
		t.Errorf("got %d actions over plain HTTP; want none", n)
	}
}

// Every answer carries the headers that keep other sites from framing
// or sniffing the pages; HSTS only over HTTPS.
func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	staff := e.staff()
	anon := e.lanClient()
	sup := e.peer("127.0.0.2")
	tests := []struct {
		name  string
		c     *client
		path  string
		https bool
		csp   []string
	}{
		{"LAN page", staff, "/", true, []string{"frame-ancestors 'none'", "default-src 'self'", "script-src 'self'", "style-src 'self'"}},
		{"LAN login", anon, "/login", true, []string{"frame-ancestors 'none'", "default-src 'self'"}},
		{"LAN API", staff, "/api/status", true, []string{"frame-ancestors 'none'"}},
		{"LAN refusal", anon, "/api/status", true, []string{"frame-ancestors 'none'"}},
		{"LAN static", anon, "/static/style.css", true, []string{"frame-ancestors 'none'"}},
		{"LAN not found", staff, "/nowhere", true, []string{"frame-ancestors 'none'"}},
		{"custody page to print", staff, "/custody/export?month=2026-11&format=html", true, []string{"frame-ancestors 'none'", "default-src 'none'", "style-src 'sha256-"}},
		{"tailnet page", sup, "/", false, []string{"frame-ancestors 'none'", "default-src 'self'"}},
		{"tailnet refusal", e.peer("127.0.0.9"), "/", false, []string{"frame-ancestors 'none'"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := tt.c.get(tt.path)
			h := res.header
			csp := h.Get("Content-Security-Policy")
			for _, want := range tt.csp {
				if !strings.Contains(csp, want) {
					t.Errorf("Content-Security-Policy: got %q; want it to hold %q", csp, want)
				}
			}
			if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
				t.Errorf("Content-Security-Policy: got %q; want no unsafe sources", csp)
			}
			if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options: got %q; want nosniff", got)
			}
			if got := h.Get("Referrer-Policy"); got != "no-referrer" {
				t.Errorf("Referrer-Policy: got %q; want no-referrer", got)
			}
			if got := h.Get("Strict-Transport-Security"); (got != "") != tt.https || tt.https && !strings.HasPrefix(got, "max-age=") {
				t.Errorf("Strict-Transport-Security: got %q; want one only over HTTPS (%v)", got, tt.https)
			}
		})
	}
}

// The box's certificate: ECDSA P-256, self-signed for its names and
// addresses, the key readable by its owner only, the same at every
// start, the one the LAN port presents, and its fingerprint on the pages
// where people check it.
func TestCertificate(t *testing.T) {
	e := newEnv(t)
	cert := e.srv.Cert()
	leaf := cert.TLS.Leaf
	if k, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("key: got %T; want ECDSA P-256", leaf.PublicKey)
	}
	host, _ := os.Hostname()
	for _, name := range []string{host, host + ".local", "localhost"} {
		if !slices.Contains(leaf.DNSNames, name) {
			t.Errorf("names: got %v; want %s among them", leaf.DNSNames, name)
		}
	}
	if !slices.ContainsFunc(leaf.IPAddresses, func(ip net.IP) bool { return ip.IsLoopback() }) {
		t.Errorf("addresses: got %v; want the loopback among them", leaf.IPAddresses)
	}
	if life := leaf.NotAfter.Sub(start); life < 10*365*24*time.Hour {
		t.Errorf("validity: got %v; want ten years or more", life)
	}
	if err := leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature); err != nil || leaf.Issuer.String() != leaf.Subject.String() {
		t.Errorf("self-signed: got issuer %s, %v; want the subject %s signing itself", leaf.Issuer, err, leaf.Subject)
	}
	st, err := os.Stat(filepath.Join(e.state, "tls-key.pem"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file: got %v, %v; want mode 0600", st.Mode().Perm(), err)
	}
	if fp, err := web.ReadFingerprint(e.state); err != nil || fp != cert.Fingerprint {
		t.Errorf("fingerprint from the state directory: got %q, %v; want %q", fp, err, cert.Fingerprint)
	}
	if got := presented(t, strings.TrimPrefix(e.lan.URL, "https://")); got != cert.Fingerprint {
		t.Errorf("the LAN port presents %s; want %s", got, cert.Fingerprint)
	}
	c := e.lanClient()
	if res := c.get("/setup"); !strings.Contains(res.body, cert.Fingerprint) {
		t.Errorf("setup page: got no fingerprint in %q; want %s", res.body, cert.Fingerprint)
	}
	staff := e.staff()
	if res := staff.get("/"); !strings.Contains(res.body, cert.Fingerprint) {
		t.Errorf("status page: got no fingerprint; want %s", cert.Fingerprint)
	}
	again, err := web.LoadCert(e.state, []string{"other"}, nil, start.Add(24*time.Hour))
	if err != nil || again.Fingerprint != cert.Fingerprint {
		t.Errorf("second start: got %v, %v; want the same certificate %s", again, err, cert.Fingerprint)
	}
}

// A missing, damaged or expired certificate is made again at the start.
func TestCertificateRemade(t *testing.T) {
	tests := []struct {
		name  string
		spoil func(dir string) error
		now   time.Time
	}{
		{"key missing", func(dir string) error { return os.Remove(filepath.Join(dir, "tls-key.pem")) }, start},
		{"certificate missing", func(dir string) error { return os.Remove(filepath.Join(dir, "tls-cert.pem")) }, start},
		{"certificate damaged", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "tls-cert.pem"), []byte("-----BEGIN CERTIFICATE-----\nAAAA\n"), 0o644)
		}, start},
		{"key of another certificate", func(dir string) error {
			other := t.TempDir()
			if _, err := web.LoadCert(other, []string{"other"}, nil, start); err != nil {
				return err
			}
			b, err := os.ReadFile(filepath.Join(other, "tls-key.pem"))
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, "tls-key.pem"), b, 0o600)
		}, start},
		{"expired", func(string) error { return nil }, start.AddDate(21, 0, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			first, err := web.LoadCert(dir, []string{"clinicbox"}, nil, start)
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.spoil(dir); err != nil {
				t.Fatal(err)
			}
			next, err := web.LoadCert(dir, []string{"clinicbox"}, nil, tt.now)
			if err != nil {
				t.Fatalf("got %v; want a new certificate", err)
			}
			if next.Fingerprint == first.Fingerprint {
				t.Errorf("got the same certificate %s; want a new one", next.Fingerprint)
			}
			if fp, err := web.ReadFingerprint(dir); err != nil || fp != next.Fingerprint {
				t.Errorf("stored: got %q, %v; want %q", fp, err, next.Fingerprint)
			}
		})
	}
}

// presented is the fingerprint of the certificate a TLS server at addr
// shows. Verification is skipped on purpose: the test compares what is
// shown with what the box stored.
func presented(t *testing.T, addr string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return web.Fingerprint(conn.ConnectionState().PeerCertificates[0].Raw)
}

// A client that sends nothing holds up no other client of the LAN port.
func TestSilentClientHoldsUpNobody(t *testing.T) {
	e := newEnv(t)
	addr := strings.TrimPrefix(e.lan.URL, "https://")
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	plain, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	fmt.Fprintf(plain, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	res, err := http.ReadResponse(bufio.NewReader(plain), nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMovedPermanently {
		t.Errorf("got %d; want 301", res.StatusCode)
	}
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
