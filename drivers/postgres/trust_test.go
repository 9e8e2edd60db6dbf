package postgres_test

import (
	"strings"
	"testing"

	"github.com/clinicbox/clinicbox/drivers/postgres"
)

func TestCheckURL(t *testing.T) {
	pin := strings.Repeat("AB:", 31) + "AB"
	for _, tc := range []struct {
		name, url string
		want      string // "encrypted", "verified", "plain", "insecure", or an error's words
	}{
		{"network by default", "postgres://clinicbox:pw@db.clinic:5432/postgres", "encrypted"},
		{"network, require", "postgres://clinicbox@10.0.0.5/postgres?sslmode=require", "encrypted"},
		{"fingerprint", "postgres://clinicbox@10.0.0.5/postgres?sslsha256=" + pin, "verified"},
		{"openssl's line", "postgres://clinicbox@10.0.0.5/postgres?sslsha256=sha256+Fingerprint%3D" + pin, "verified"},
		{"ca file", "postgres://clinicbox@10.0.0.5/postgres?sslmode=verify-full&sslrootcert=/perm/db-ca.pem", "verified"},
		{"network opted out", "postgres://clinicbox@10.0.0.5/postgres?sslmode=disable", "insecure"},
		{"loopback", "postgres://clinicbox@127.0.0.1:5432/postgres", "plain"},
		{"loopback v6", "postgres://clinicbox@[::1]:5432/postgres", "plain"},
		{"localhost", "postgres://clinicbox@localhost/postgres", "plain"},
		{"unix socket", "postgres:///postgres?host=/run/postgresql", "plain"},
		{"loopback asking for tls", "postgres://clinicbox@127.0.0.2/postgres?sslmode=require", "encrypted"},
		{"prefer", "postgres://clinicbox@db/postgres?sslmode=prefer", "sslmode=prefer"},
		{"allow", "postgres://clinicbox@db/postgres?sslmode=allow", "sslmode=allow"},
		{"unknown mode", "postgres://clinicbox@db/postgres?sslmode=on", "not one clinicbox knows"},
		{"short fingerprint", "postgres://clinicbox@db/postgres?sslsha256=ABCD", "not a SHA-256 fingerprint"},
		{"verify without anything", "postgres://clinicbox@db/postgres?sslmode=verify-ca", "nothing to verify"},
		{"disable and pin", "postgres://clinicbox@db/postgres?sslmode=disable&sslsha256=" + pin, "remove sslmode=disable"},
		{"several hosts", "postgres://clinicbox@db1,db2/postgres", "several servers"},
		{"keyword form", "host=db user=clinicbox", "postgres://"},
		{"empty", "", "no database URL"},
		{"bad escape", "postgres://clinicbox:se%zzcret@db/postgres", "percent-encode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := postgres.CheckURL(tc.url)
			got := "plain"
			switch {
			case err != nil:
				got = err.Error()
			case tr.Verified:
				got = "verified"
			case tr.Encrypted:
				got = "encrypted"
			case tr.Insecure():
				got = "insecure"
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("got %q; want %q", got, tc.want)
			}
			if strings.Contains(got, "cret") {
				t.Errorf("the error shows the password: %s", got)
			}
		})
	}
}
