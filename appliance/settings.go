package appliance

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/rotation"
	"github.com/clinicbox/clinicbox/rotation/civil"
)

// Settings are the practice's settings, a JSON file on the box's persistent
// storage. Load rejects unknown fields; Validate names the field and the
// fix for anything the box cannot work with.
type Settings struct {
	// Disabled stops the service on purpose (exit 125: gokrazy does not
	// restart it).
	Disabled bool `json:"disabled,omitempty"`
	// Database is the clinic's PostgreSQL: a URL for a role with
	// REPLICATION. The password may be given separately in PasswordFile so
	// the settings file can be shown without it.
	Database Database `json:"database"`
	// Recipients are extra age public keys every backup is encrypted to,
	// typically the practice's paper recovery key. The box's own key is
	// always added.
	Recipients []string `json:"recipients"`
	// Rotation is the drive rotation: calendar, generations, policy.
	Rotation RotationSettings `json:"rotation"`
	// NightlyAt is the local time of the nightly base backup; default 21:00.
	NightlyAt civil.TimeOfDay `json:"nightly_at"`
	// QuietHours keep the buzzer silent and hold non-urgent alerts.
	QuietHours civil.Span `json:"quiet_hours"`
	// Slot is the replication slot of the drive copy; default
	// "clinicbox_drive".
	Slot string `json:"slot,omitempty"`
	// SlotWarnBytes raises "slot retention" when the server keeps more WAL
	// than this for the box; zero means half of max_slot_wal_keep_size, or
	// 8 GiB when the server sets no limit.
	SlotWarnBytes int64 `json:"slot_warn_bytes,omitempty"`
	// Panel are the GPIO lines of the front panel.
	Panel PanelPins `json:"panel"`
	// Alerts configure e-mail and webhook alerts; raw here, read by the
	// alert package.
	Alerts json.RawMessage `json:"alerts,omitempty"`
	// Maintenance configures scheduled VACUUM and REINDEX; raw here.
	Maintenance json.RawMessage `json:"maintenance,omitempty"`
	// Offsite configures the vault on the tailnet; raw here.
	Offsite json.RawMessage `json:"offsite,omitempty"`
	// Support maps tailnet tags and logins to remote-support roles; raw.
	Support json.RawMessage `json:"support,omitempty"`
	// Drills configures the box's own restore drills; raw here, read by
	// DrillSettings.
	Drills json.RawMessage `json:"drills,omitempty"`
}

// Database is how the box reaches the clinic's server.
type Database struct {
	URL          string `json:"url"`
	PasswordFile string `json:"password_file,omitempty"`
}

// RotationSettings are rotation.Policy's settings in the settings file.
type RotationSettings struct {
	TimeZone     string          `json:"time_zone"`
	Workdays     []string        `json:"workdays,omitempty"` // "Mon", "Tue", ...; default Monday to Friday
	Holidays     []rotation.Date `json:"holidays,omitempty"`
	SwapAt       civil.TimeOfDay `json:"swap_at"`
	Generations  []string        `json:"generations,omitempty"`
	Strict       bool            `json:"strict,omitempty"`
	OverdueAfter int             `json:"overdue_after,omitempty"`
}

// PanelPins are BCM GPIO line numbers; -1 leaves a part unwired. All zero
// means the defaults documented in the README.
type PanelPins struct {
	Green  int `json:"green"`
	Amber  int `json:"amber"`
	Red    int `json:"red"`
	Buzzer int `json:"buzzer"`
	Button int `json:"button"`
}

// DefaultSlot is the replication slot of the drive copy.
const DefaultSlot = "clinicbox_drive"

// LoadSettings reads settings, rejecting unknown fields, and validates them.
func LoadSettings(r io.Reader) (*Settings, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var s Settings
	if err := dec.Decode(&s); err != nil {
		var se *json.SyntaxError
		if errors.Is(err, io.EOF) {
			return nil, errors.New("settings: the file is empty; write the settings into it (the README has an example)")
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errors.New("settings: the file ends in the middle (cut short when it was copied or saved?); fix it or restore it from the example in the README")
		}
		if errors.As(err, &se) {
			return nil, fmt.Errorf("settings: not valid JSON at byte %d: %v; fix the file or restore it from the example in the README", se.Offset, err)
		}
		return nil, fmt.Errorf("settings: %v; check the field names against the README", err)
	}
	s.defaults()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

func (s *Settings) defaults() {
	if s.Slot == "" {
		s.Slot = DefaultSlot
	}
	if s.NightlyAt == (civil.TimeOfDay{}) {
		s.NightlyAt = civil.TimeOfDay{Hour: 21}
	}
	if s.Panel == (PanelPins{}) {
		s.Panel = PanelPins{Green: 17, Amber: 27, Red: 22, Buzzer: 23, Button: 24}
	}
}

// Validate reports the first setting the box cannot work with.
func (s *Settings) Validate() error {
	if s.Database.URL == "" {
		return errors.New("settings: database.url: missing; set it to postgres://clinicbox@SERVER:5432/postgres (a role with REPLICATION)")
	}
	u, err := url.Parse(s.Database.URL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return fmt.Errorf("settings: database.url: %q is not a postgres:// URL with a host; write it as postgres://USER@HOST:5432/postgres", Redact(s.Database.URL))
	}
	if err := checkDatabaseTransport(s.Database.URL); err != nil {
		return err
	}
	if _, err := archive.ParseRecipients(s.Recipients); len(s.Recipients) > 0 && err != nil {
		return fmt.Errorf("settings: recipients: %v; each entry must be an age public key (age1...), such as the practice's paper recovery key", err)
	}
	if _, err := s.Policy(nil); err != nil {
		return err
	}
	if s.SlotWarnBytes < 0 {
		return errors.New("settings: slot_warn_bytes: negative; give a number of bytes, or 0 for the default")
	}
	if !validSlot(s.Slot) {
		return fmt.Errorf("settings: slot: %q; use lowercase letters, digits and underscores", s.Slot)
	}
	pins := map[int]string{}
	for name, p := range map[string]int{"green": s.Panel.Green, "amber": s.Panel.Amber, "red": s.Panel.Red, "buzzer": s.Panel.Buzzer, "button": s.Panel.Button} {
		if p < -1 || p > 53 {
			return fmt.Errorf("settings: panel.%s: GPIO %d does not exist; use a BCM line number 0-53, or -1 if not wired", name, p)
		}
		if other, dup := pins[p]; dup && p >= 0 {
			return fmt.Errorf("settings: panel.%s: GPIO %d is also panel.%s; give each part its own line", name, p, other)
		}
		pins[p] = name
	}
	_, err = s.DrillSettings()
	return err
}

func validSlot(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

var weekdays = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

// Location is the practice's time zone.
func (s *Settings) Location() (*time.Location, error) {
	if s.Rotation.TimeZone == "" {
		return nil, errors.New("settings: rotation.time_zone: missing; set the practice's time zone, such as \"America/Chicago\"")
	}
	loc, err := time.LoadLocation(s.Rotation.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("settings: rotation.time_zone: %q is not a known time zone; use a name such as \"Europe/Berlin\"", s.Rotation.TimeZone)
	}
	return loc, nil
}

// Policy builds the rotation policy; verify checks drive signatures.
func (s *Settings) Policy(verify rotation.VerifyFunc) (*rotation.Policy, error) {
	loc, err := s.Location()
	if err != nil {
		return nil, err
	}
	p := &rotation.Policy{
		Calendar:     rotation.Calendar{Location: loc, Holidays: s.Rotation.Holidays, SwapAt: s.Rotation.SwapAt},
		Generations:  s.Rotation.Generations,
		Strict:       s.Rotation.Strict,
		OverdueAfter: s.Rotation.OverdueAfter,
		Verify:       verify,
	}
	for _, w := range s.Rotation.Workdays {
		d, ok := weekdays[strings.ToLower(w)[:min(3, len(w))]]
		if !ok {
			return nil, fmt.Errorf("settings: rotation.workdays: %q is not a weekday; use Mon, Tue, Wed, Thu, Fri, Sat or Sun", w)
		}
		p.Calendar.Workdays = append(p.Calendar.Workdays, d)
	}
	if verify == nil {
		p.Verify = func(rotation.Identity) bool { return false }
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("settings: %w", err)
	}
	return p, nil
}

// DatabaseURL is the database URL with the password from PasswordFile, if
// one is set.
func (s *Settings) DatabaseURL() (string, error) {
	if s.Database.PasswordFile == "" {
		return s.Database.URL, nil
	}
	b, err := os.ReadFile(s.Database.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("settings: database.password_file: %v; create it with the replication role's password (mode 0600)", err)
	}
	u, err := url.Parse(s.Database.URL)
	if err != nil {
		return "", fmt.Errorf("settings: database.url: %v", err)
	}
	u.User = url.UserPassword(u.User.Username(), strings.TrimRight(string(b), "\r\n"))
	return u.String(), nil
}

// Redact returns a database URL without its password, for logs and status.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}
