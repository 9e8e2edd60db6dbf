package web_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/audit"
	"github.com/clinicbox/clinicbox/appliance/web"
	"github.com/clinicbox/clinicbox/appliance/web/webtest"
)

func TestMain(m *testing.M) {
	web.CheapPasswords()
	os.Exit(m.Run())
}

// clock is a settable clock for the server and the fake box.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// start is a Saturday afternoon in November, in the practice's zone.
var start = time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)

// env is a server in front of a fake box, on httptest listeners for the
// LAN and the tailnet. Tailnet callers are told apart by their loopback
// address: each identity dials from its own 127.0.0.N.
type env struct {
	t     *testing.T
	clock *clock
	box   *webtest.Box
	srv   *web.Server
	audit *audit.Log
	state string
	lan   *httptest.Server
	tail  *httptest.Server
	// peers maps a loopback IP to the tailnet identity WhoIs returns.
	peers map[string]web.Caller

	mu sync.Mutex
	// code is the setup code the box last showed on its screen.
	code string
}

// showCode is the box's screen.
func (e *env) showCode(code string) { e.mu.Lock(); e.code = code; e.mu.Unlock() }

// setupCode is what someone at the box reads on its screen.
func (e *env) setupCode() string { e.mu.Lock(); defer e.mu.Unlock(); return e.code }

type envOption func(*web.Config)

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	e := &env{t: t, clock: &clock{t: start}, state: t.TempDir(), peers: map[string]web.Caller{
		"127.0.0.2": {Node: "helpdesk-laptop.clinic.ts.net", Tags: []string{"tag:support"}},
		"127.0.0.3": {Node: "it-desktop.clinic.ts.net", Login: "it@practice.example"},
		"127.0.0.4": {Node: "phone.clinic.ts.net", Login: "stranger@example.com"},
	}}
	e.box = webtest.New(start)
	e.box.Now = e.clock.Now
	var err error
	e.audit, err = audit.Open(filepath.Join(e.state, "audit.jsonl"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.audit.Close() })
	cfg := web.Config{
		Box: e.box, Sealer: e.box.Sealer(), StateDir: e.state, Audit: e.audit,
		Roles:         web.Roles{Admin: []string{"it@practice.example"}, Support: []string{"tag:support"}},
		WhoIs:         e.whois,
		Sim:           e.box,
		Practice:      "Riverside Family Practice",
		Location:      time.UTC,
		Now:           e.clock.Now,
		ShowSetupCode: e.showCode,
	}
	for _, o := range opts {
		o(&cfg)
	}
	e.srv, err = web.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The LAN is served as on the box: HTTPS and plain HTTP on one port,
	// with the box's own certificate.
	e.lan = httptest.NewUnstartedServer(e.srv.LAN())
	e.lan.Listener = web.SplitTLS(e.lan.Listener, e.srv.Cert().TLSConfig())
	e.lan.Start()
	e.lan.URL = strings.Replace(e.lan.URL, "http://", "https://", 1)
	t.Cleanup(e.lan.Close)
	e.tail = httptest.NewServer(e.srv.Tailnet())
	t.Cleanup(e.tail.Close)
	return e
}

func (e *env) whois(ctx context.Context, remoteAddr string) (web.Caller, error) {
	host, _, _ := net.SplitHostPort(remoteAddr)
	c, ok := e.peers[host]
	if !ok {
		return web.Caller{}, errors.New("no such peer")
	}
	return c, nil
}

// client is one browser or API client: a cookie jar, redirects not
// followed, dialing from a chosen loopback address.
type client struct {
	t    *testing.T
	base string
	hc   *http.Client
	csrf string
}

func (e *env) client(base, fromIP string) *client {
	jar, _ := cookiejar.New(nil)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(fromIP)}}
	roots := x509.NewCertPool()
	roots.AddCert(e.srv.Cert().TLS.Leaf) // the box's certificate, trusted as a browser would after checking it
	tr := &http.Transport{DialContext: d.DialContext, TLSClientConfig: &tls.Config{RootCAs: roots}}
	e.t.Cleanup(tr.CloseIdleConnections)
	return &client{t: e.t, base: base, hc: &http.Client{
		Jar: jar, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// lanClient is a browser on the practice network.
func (e *env) lanClient() *client { return e.client(e.lan.URL, "127.0.0.1") }

// peer is a tailnet caller from 127.0.0.N.
func (e *env) peer(ip string) *client { return e.client(e.tail.URL, ip) }

// staff is a LAN browser after the first-run password was set with the
// setup code from the box's screen.
func (e *env) staff() *client {
	c := e.lanClient()
	res := c.post("/setup", url.Values{"password": {"correct horse battery"}, "confirm": {"correct horse battery"}, "code": {e.setupCode()}}, nil)
	if res.code != http.StatusSeeOther {
		e.t.Fatalf("setup: got %d %s; want 303", res.code, res.body)
	}
	c.session()
	return c
}

type response struct {
	code   int
	header http.Header
	body   string
}

func (c *client) do(req *http.Request) response {
	c.t.Helper()
	res, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return response{code: res.StatusCode, header: res.Header, body: string(b)}
}

func (c *client) get(path string) response {
	c.t.Helper()
	req, err := http.NewRequest("GET", c.base+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.do(req)
}

// post sends a form with extra headers.
func (c *client) post(path string, form url.Values, header map[string]string) response {
	c.t.Helper()
	req, err := http.NewRequest("POST", c.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return c.do(req)
}

// act posts an action with the client's CSRF token.
func (c *client) act(name, arg string) response {
	c.t.Helper()
	return c.post("/api/actions/"+name, url.Values{"arg": {arg}}, map[string]string{"X-CSRF-Token": c.csrf})
}

// session fetches the client's CSRF token and role.
func (c *client) session() (role string) {
	c.t.Helper()
	res := c.get("/api/session")
	var s struct{ Role, CSRF string }
	if res.code == http.StatusOK {
		if err := json.Unmarshal([]byte(res.body), &s); err != nil {
			c.t.Fatal(err)
		}
	}
	c.csrf = s.CSRF
	return s.Role
}

// lastAudit is the newest audit record.
func (e *env) lastAudit() audit.Record {
	e.t.Helper()
	recs, err := e.audit.Tail(1)
	if err != nil || len(recs) != 1 {
		e.t.Fatalf("audit tail: %v, %d records", err, len(recs))
	}
	return recs[0]
}

func decode[T any](t *testing.T, body string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	return v
}
