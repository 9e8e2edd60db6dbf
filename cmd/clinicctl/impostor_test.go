package main

import (
	"bytes"
	"context"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
	"github.com/clinicbox/clinicbox/drivers/testenv"
)

// clinicctl backup and stream, pointed at a host posing as the database
// server across the network, give it no password: not when it refuses TLS,
// and not when the URL opts out of TLS and it asks for the password in
// clear or as MD5. The error says what to do.
func TestImpostorGetsNoPasswordFromClinicctl(t *testing.T) {
	const pw = "Sup3r-secret-clinic-pw"
	lan := testenv.NeedLANAddress(t)
	id, _ := age.GenerateX25519Identity()
	for _, tc := range []struct {
		name, query string
		ask         pgtest.Ask
		want        string
	}{
		{"no tls", "", pgtest.AskCleartext, "ssl = on"},
		{"opted out, cleartext", "sslmode=disable", pgtest.AskCleartext, "sent no password"},
		{"opted out, md5", "sslmode=disable", pgtest.AskMD5, "sent no password"},
	} {
		for _, cmd := range []string{"backup", "stream"} {
			t.Run(cmd+"/"+tc.name, func(t *testing.T) {
				m, err := pgtest.NewImpostor(lan, tc.ask, nil)
				if err != nil {
					t.Fatal(err)
				}
				u := url.URL{Scheme: "postgres", User: url.UserPassword("clinicbox", pw), Host: m.Addr, Path: "/postgres", RawQuery: tc.query}
				args := []string{cmd, "--db", u.String(), "--repo", filepath.Join(t.TempDir(), "repo"), "--recipient", id.Recipient().String()}
				if cmd == "stream" {
					args = append(args, "--slot", "clinicbox_test")
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				var stderr bytes.Buffer
				c := exec.CommandContext(ctx, clinicctl, args...)
				c.Stderr = &stderr
				err = c.Run()
				sent, after := m.Wait()
				if bytes.Contains(sent, []byte(pw)) || len(after) > 0 {
					t.Fatalf("the impostor got %q after the startup message; want nothing", after)
				}
				if err == nil || !strings.Contains(stderr.String(), tc.want) {
					t.Fatalf("got %v, %q; want a failure saying %q", err, stderr.String(), tc.want)
				}
				if strings.Contains(stderr.String(), pw) {
					t.Errorf("the password is in the output: %q", stderr.String())
				}
			})
		}
	}
}
