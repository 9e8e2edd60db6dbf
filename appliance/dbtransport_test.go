package appliance

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/drive/drivetest"
	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
	"github.com/clinicbox/clinicbox/drivers/testenv"
)

func TestDatabaseURLSecurityIsChecked(t *testing.T) {
	pin := strings.Repeat("ab", 32)
	for _, tc := range []struct{ name, query, want string }{
		{"default", "", ""},
		{"fingerprint", "?sslsha256=" + pin, ""},
		{"ca file", "?sslrootcert=/perm/db-ca.pem", ""},
		{"opted out", "?sslmode=disable", ""},
		{"prefer", "?sslmode=prefer", "settings: database.url: sslmode=prefer"},
		{"bad fingerprint", "?sslsha256=12:34", "settings: database.url: sslsha256"},
		{"verify without a certificate", "?sslmode=verify-full", "add sslsha256=FINGERPRINT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadSettings(strings.NewReader(`{"database": {"url": "postgres://clinicbox:secret-pw@db:5432/postgres` + tc.query +
				`"}, "rotation": {"time_zone": "UTC", "swap_at": "08:00"}}`))
			if tc.want == "" && err != nil {
				t.Fatalf("got %v; want the settings accepted", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v; want an error saying %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "secret-pw") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

// A box told to reach a server across the network without TLS
// (sslmode=disable) does so, and says on its page and in /api/status that
// the connection is not encrypted; on loopback it says nothing.
func TestUnencryptedDatabaseWarns(t *testing.T) {
	lan := testenv.NeedLANAddress(t)
	db := pgtest.New(t, pgtest.Options{Listen: []string{lan}})
	for _, tc := range []struct {
		name, host string
		warn       bool
	}{
		{"network", lan, true},
		{"loopback", "127.0.0.1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, err := LoadSettings(strings.NewReader(settingsJSON(db.URLAt(tc.host, "sslmode=disable"))))
			if err != nil {
				t.Fatal(err)
			}
			top := t.TempDir()
			sim, err := drivetest.New(filepath.Join(top, "drives"), "blue")
			if err != nil {
				t.Fatal(err)
			}
			r := &rig{t: t, sim: sim, clock: &clock{t: time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)}, db: db, button: make(chan Button)}
			if r.a, err = New(Config{Settings: set, StateDir: filepath.Join(top, "state"), Drives: sim, Now: r.clock.Now, Tick: time.Hour}); err != nil {
				t.Fatal(err)
			}
			r.start()
			st := r.wait("the database checked", func(st status.Status) bool { return st.Database.Reachable })
			var warning string
			for _, c := range st.Conditions {
				if c.Name == "database not encrypted" {
					warning = c.Message
				}
			}
			if got := warning != ""; got != tc.warn {
				t.Errorf("got the warning %v; want %v (conditions %+v)", got, tc.warn, st.Conditions)
			}
			if tc.warn && !strings.HasPrefix(warning, "The connection to the database is not encrypted: ") {
				t.Errorf("got the message %q; want it to begin with what is wrong", warning)
			}
		})
	}
}
