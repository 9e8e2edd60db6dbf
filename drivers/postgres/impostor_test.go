package postgres_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/drivers/postgres"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
	"github.com/clinicbox/clinicbox/drivers/testenv"
)

const impostorPassword = "Sup3r-secret-clinic-pw"

// impostorURL is the URL a box would hold for the server at addr.
func impostorURL(addr, query string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword("clinicbox", impostorPassword), Host: addr, Path: "/postgres", RawQuery: query}
	return u.String()
}

// leaked reports whether sent holds the password, its MD5 hash (which
// logs in as the role as well as the password does), or the salted MD5
// answer (which gives the password away to an offline guesser).
func leaked(sent []byte) bool {
	hexMD5 := func(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }
	inner := hexMD5(impostorPassword + "clinicbox")
	for _, s := range []string{impostorPassword, inner, hexMD5(inner + pgtest.Salt)} {
		if bytes.Contains(sent, []byte(s)) {
			return true
		}
	}
	return false
}

// impostorCase is one way a host posing as the server asks for the
// password, and how the box must answer.
type impostorCase struct {
	name  string
	lan   bool // listen on the machine's own non-loopback address
	tls   bool // offer TLS with a certificate of its own
	query string
	ask   pgtest.Ask
	want  string // in the error
}

var impostorCases = []impostorCase{
	{"loopback plain, cleartext", false, false, "sslmode=disable", pgtest.AskCleartext, "sent no password"},
	{"loopback plain, md5", false, false, "sslmode=disable", pgtest.AskMD5, "sent no password"},
	{"lan, no tls", true, false, "", pgtest.AskCleartext, "ssl = on"},
	{"lan opted out, cleartext", true, false, "sslmode=disable", pgtest.AskCleartext, "sent no password"},
	{"lan opted out, md5", true, false, "sslmode=disable", pgtest.AskMD5, "sent no password"},
	{"lan unverified tls, cleartext", true, true, "", pgtest.AskCleartext, "sent no password"},
	{"lan unverified tls, md5", true, true, "sslmode=require", pgtest.AskMD5, "sent no password"},
	{"lan unverified tls, scram without binding", true, true, "", pgtest.AskSCRAM, "SCRAM-SHA-256-PLUS"},
	{"lan wrong fingerprint", true, true, "sslsha256=" + strings.Repeat("ab", 32), pgtest.AskCleartext, "not the one"},
	{"oversized message", false, false, "sslmode=disable", pgtest.AskHuge, "sent a message of"},
}

// runImpostor points connect at an impostor set up as tc says and checks
// that the connection fails as wanted without the password leaving.
func runImpostor(t *testing.T, tc impostorCase, connect func(ctx context.Context, dbURL string) error) {
	t.Helper()
	host := "127.0.0.1"
	if tc.lan {
		host = testenv.NeedLANAddress(t)
	}
	cert, err := pgtest.NewCert(host)
	if err != nil {
		t.Fatal(err)
	}
	var offer = &cert.TLS
	if !tc.tls {
		offer = nil
	}
	m, err := pgtest.NewImpostor(host, tc.ask, offer)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = connect(ctx, impostorURL(m.Addr, tc.query))
	sent, after := m.Wait()
	if leaked(sent) {
		t.Fatalf("the password reached the impostor: %q", sent)
	}
	if len(after) > 0 {
		t.Errorf("got %q sent after the startup message; want nothing", after)
	}
	if err == nil || !strings.Contains(err.Error(), tc.want) {
		t.Fatalf("got error %v; want one saying %q", err, tc.want)
	}
	if strings.Contains(err.Error(), impostorPassword) {
		t.Errorf("the error shows the password: %v", err)
	}
	var pe *postgres.Error
	if !errors.As(err, &pe) || pe.Fix == "" {
		t.Errorf("got %T %v; want a *postgres.Error with a fix", err, err)
	}
}

func TestImpostorGetsNoPassword(t *testing.T) {
	paths := map[string]func(ctx context.Context, dbURL string) error{
		"replication": func(ctx context.Context, dbURL string) error {
			c, err := postgres.Connect(ctx, dbURL)
			if err == nil {
				c.Close()
			}
			return err
		},
		"ordinary": func(ctx context.Context, dbURL string) error {
			_, err := postgres.ReadSlotHealth(ctx, dbURL, "clinicbox_drive")
			return err
		},
	}
	for _, tc := range impostorCases {
		for name, connect := range paths {
			t.Run(tc.name+"/"+name, func(t *testing.T) { runImpostor(t, tc, connect) })
		}
	}
}

// The impostor does capture a password that is sent: a server whose
// certificate is pinned may ask for it in clear (inside TLS), and gets it.
func TestPinnedServerMayAskForPassword(t *testing.T) {
	host := testenv.NeedLANAddress(t)
	cert, err := pgtest.NewCert(host)
	if err != nil {
		t.Fatal(err)
	}
	m, err := pgtest.NewImpostor(host, pgtest.AskCleartext, &cert.TLS)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	postgres.Connect(ctx, impostorURL(m.Addr, "sslsha256="+cert.SHA256))
	if sent, _ := m.Wait(); !leaked(sent) {
		t.Errorf("got %q; want the password, sent inside TLS to the pinned server", sent)
	}
}
