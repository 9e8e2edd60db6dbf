package postgres_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/drivers/postgres"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
	"github.com/clinicbox/clinicbox/drivers/testenv"
)

// connectBoth opens a replication and an ordinary connection and reports
// whether the ordinary one is encrypted.
func connectBoth(ctx context.Context, dbURL string) (tls bool, err error) {
	c, err := postgres.Connect(ctx, dbURL)
	if err != nil {
		return false, err
	}
	c.Close()
	conn, err := postgres.Open(ctx, dbURL)
	if err != nil {
		return false, err
	}
	defer conn.Close(context.Background())
	err = conn.QueryRow(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&tls)
	return tls, err
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// A server with ssl = on and a self-signed certificate, reached at the
// machine's own network address: the box connects when it is given the
// certificate's fingerprint or the certificate as CA, and refuses a wrong
// one.
func TestTLSServer(t *testing.T) {
	lan := testenv.NeedLANAddress(t)
	cert, err := pgtest.NewCert("127.0.0.1", lan)
	if err != nil {
		t.Fatal(err)
	}
	other, err := pgtest.NewCert(lan)
	if err != nil {
		t.Fatal(err)
	}
	ca, otherCA := writeFile(t, "ca.pem", cert.CertPEM), writeFile(t, "other.pem", other.CertPEM)
	c := pgtest.New(t, pgtest.Options{TLS: cert, Listen: []string{lan}})
	bare := strings.ToLower(strings.ReplaceAll(cert.SHA256, ":", ""))
	for _, tc := range []struct{ name, host, query, want string }{
		{"fingerprint", lan, "sslsha256=" + cert.SHA256, ""},
		{"fingerprint without colons", lan, "sslmode=verify-full&sslsha256=" + bare, ""},
		{"ca file", lan, "sslrootcert=" + ca, ""},
		{"ca file and host name", lan, "sslmode=verify-full&sslrootcert=" + ca, ""},
		{"unverified, channel bound", lan, "", ""},
		{"loopback asking for tls", "127.0.0.1", "sslmode=require", ""},
		{"wrong fingerprint", lan, "sslsha256=" + other.SHA256, "is not the one in sslsha256"},
		{"wrong ca", lan, "sslrootcert=" + otherCA, "does not check out against sslrootcert"},
		{"missing ca file", lan, "sslrootcert=" + ca + ".gone", "cannot read the server's CA file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			encrypted, err := connectBoth(ctx, c.URLAt(tc.host, tc.query))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v; want a connection", err)
			case tc.want == "" && !encrypted:
				t.Errorf("got an unencrypted connection; want TLS")
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v; want an error saying %q", err, tc.want)
			}
		})
	}
}

// A server without TLS across a network is refused unless the URL opts
// out; on loopback it may stay plain.
func TestServerWithoutTLS(t *testing.T) {
	lan := testenv.NeedLANAddress(t)
	c := pgtest.New(t, pgtest.Options{Listen: []string{lan}})
	for _, tc := range []struct{ name, host, query, want string }{
		{"network", lan, "", "ssl = on"},
		{"network, require", lan, "sslmode=require", "ssl = on"},
		{"network, opted out", lan, "sslmode=disable", ""},
		{"loopback", "127.0.0.1", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := connectBoth(ctx, c.URLAt(tc.host, tc.query))
			if tc.want == "" && err != nil {
				t.Fatalf("got %v; want a connection", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("got %v; want an error saying %q", err, tc.want)
			}
		})
	}
}

// A URL without a host reaches the server through pgconn's default, here
// the Unix socket PGHOST names: plain, and with the local login (trust).
func TestUnixSocketFromEnvironment(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{})
	t.Setenv("PGHOST", c.SockDir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tls, err := connectBoth(ctx, fmt.Sprintf("postgres://%s@/postgres?port=%d", pgtest.ReplUser, c.Port))
	if err != nil || tls {
		t.Fatalf("got TLS %v, %v; want a plain connection", tls, err)
	}
}
