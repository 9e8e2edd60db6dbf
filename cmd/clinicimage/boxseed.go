package main

import (
	"encoding/json"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
)

// boxSeed is what the smoke puts on /perm before the first boot, the way
// the README's "Setting up the box" tells a clinic's IT person to: the
// settings file and the database password beside it. The box makes its
// own key on first start, as a real one does; backups are encrypted to it
// and to Recipient, the practice's recovery key, which is what the host
// later verifies and restores the drive with.
type boxSeed struct {
	// DBHost and DBPort are the database server as the guest reaches it.
	DBHost string
	DBPort int
	// DBUser and DBPassword are a role with REPLICATION.
	DBUser, DBPassword string
	// DBFingerprint is the SHA-256 of the server's certificate, which the
	// box pins (sslsha256 in the URL).
	DBFingerprint string
	// Recipient is the practice's recovery key (age1...).
	Recipient   string
	Generations []string
	// Panel maps each part of the front panel to its GPIO line; nil
	// leaves it unwired, for a machine without GPIO.
	Panel map[string]int
}

// Where clinicbox finds its settings and state on the box (config.json's
// flags), and the same paths inside the seed directory.
const (
	boxStateDir     = "/perm/clinicbox"
	boxSettingsFile = "settings.json"
	boxDBPassword   = "db-password"
	boxChecks       = "checks.sql"
)

// failDrillTable is the table whose existence the smoke's own drill check
// forbids: the host creates it in the clinic's database to make the box's
// next drill fail, the way a practice's check catches a broken restore.
const failDrillTable = "smoke_drill_must_fail"

// checksSQL is the practice's check file on /perm: a row count and a
// check that holds until the host creates failDrillTable.
var checksSQL = "# The smoke's checks, as a practice writes its own.\ncount public.encounters\n" +
	"SELECT NOT EXISTS (SELECT FROM pg_class WHERE relname = '" + failDrillTable + "');\n"

// boxSettings mirrors the part of appliance.Settings the smoke sets, in
// the settings file's JSON form.
type boxSettings struct {
	Database struct {
		URL          string `json:"url"`
		PasswordFile string `json:"password_file"`
	} `json:"database"`
	Recipients []string `json:"recipients"`
	Rotation   struct {
		TimeZone    string   `json:"time_zone"`
		SwapAt      string   `json:"swap_at"`
		Generations []string `json:"generations"`
	} `json:"rotation"`
	// Panel is all -1 when the machine has no front panel.
	Panel  map[string]int `json:"panel"`
	Drills struct {
		Checks string `json:"checks"`
	} `json:"drills"`
}

// settingsJSON is the box's settings file.
func (b boxSeed) settingsJSON() ([]byte, error) {
	var s boxSettings
	u := url.URL{Scheme: "postgres", User: url.User(b.DBUser), Host: net.JoinHostPort(b.DBHost, strconv.Itoa(b.DBPort)), Path: "/postgres"}
	if b.DBFingerprint != "" {
		u.RawQuery = url.Values{"sslsha256": {b.DBFingerprint}}.Encode()
	}
	s.Database.URL = u.String()
	s.Database.PasswordFile = boxStateDir + "/" + boxDBPassword
	s.Recipients = []string{b.Recipient}
	// UTC needs no zone database, which the image does not carry.
	s.Rotation.TimeZone, s.Rotation.SwapAt, s.Rotation.Generations = "UTC", "08:00", b.Generations
	s.Drills.Checks = boxStateDir + "/" + boxChecks
	s.Panel = b.Panel
	if s.Panel == nil {
		s.Panel = map[string]int{"green": -1, "amber": -1, "red": -1, "buzzer": -1, "button": -1}
	}
	out, err := json.MarshalIndent(s, "", "  ")
	return append(out, '\n'), err
}

// write creates dir/clinicbox with the settings and the password file; dir
// becomes the root of /perm.
func (b boxSeed) write(dir string) error {
	settings, err := b.settingsJSON()
	if err != nil {
		return err
	}
	state := filepath.Join(dir, filepath.Base(boxStateDir))
	if err := os.MkdirAll(state, 0o700); err != nil {
		return err
	}
	// /perm's root takes the seed directory's mode.
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(state, boxSettingsFile), settings, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(state, boxChecks), []byte(checksSQL), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(state, boxDBPassword), []byte(b.DBPassword+"\n"), 0o600)
}
