package webclient_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/audit"
	"github.com/clinicbox/clinicbox/appliance/web"
	"github.com/clinicbox/clinicbox/appliance/web/webclient"
	"github.com/clinicbox/clinicbox/appliance/web/webtest"
)

// The client signs in to real pages over HTTPS when it is given the
// box's fingerprint, in any of the ways people write it, and refuses any
// other certificate before sending the password.
func TestClientPinsFingerprint(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 21, 14, 0, 0, 0, time.UTC)
	al, err := audit.Open(filepath.Join(dir, "audit.jsonl"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { al.Close() })
	box := webtest.New(now)
	var code string // what the box's screen shows; the server is built before any sign-in
	srv, err := web.New(web.Config{Box: box, Sealer: box.Sealer(), StateDir: dir, Audit: al, Now: func() time.Time { return now },
		ShowSetupCode: func(c string) { code = c }})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv.LAN())
	ts.Listener = web.SplitTLS(ts.Listener, srv.Cert().TLSConfig())
	ts.Start()
	t.Cleanup(ts.Close)
	base := strings.Replace(ts.URL, "http://", "https://", 1)
	fp := srv.Cert().Fingerprint
	other, err := web.LoadCert(t.TempDir(), []string{"other"}, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, base, fingerprint string
		ok                      bool
	}{
		{"the box's fingerprint", base, fp, true},
		{"lower case without colons", base, strings.ToLower(strings.ReplaceAll(fp, ":", "")), true},
		{"another certificate's", base, other.Fingerprint, false},
		{"none", base, "", false},
		{"cut short", base, fp[:40], false},
		{"plain HTTP", ts.URL, fp, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := webclient.New(tt.base, "correct horse battery", tt.fingerprint)
			c.SetSetupCode(code)
			err := c.SignIn(context.Background())
			if (err == nil) != tt.ok {
				t.Fatalf("sign in: got %v; want success %v", err, tt.ok)
			}
			if !tt.ok {
				return
			}
			if st, err := c.Status(context.Background()); err != nil || st.Headline == "" {
				t.Errorf("status: got %v, %v; want the status document", st, err)
			}
		})
	}
}
