package appliance

import (
	"strings"
	"testing"
)

func TestSettingsSectionsAreChecked(t *testing.T) {
	base := `"database": {"url": "postgres://clinicbox:secret-pw@db:5432/postgres"}, "rotation": {"time_zone": "Europe/Berlin", "swap_at": "08:00"}`
	for _, tc := range []struct{ name, extra, want string }{
		{"alerts unknown field", `"alerts": {"smpt": {}}`, "settings: alerts"},
		{"alerts bad security", `"alerts": {"smtp": {"server": "mail:587", "security": "maybe", "from": "box@x", "to": ["a@x"]}}`, "alerts"},
		{"maintenance unknown", `"maintenance": {"enabeld": true}`, "settings: maintenance"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := LoadSettings(strings.NewReader("{" + base + "," + tc.extra + "}"))
			if err == nil {
				if _, _, err = s.AlertConfig(t.TempDir(), "box"); err == nil {
					_, err = s.MaintSettings()
				}
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v; want an error naming %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret-pw") {
				t.Errorf("the database password is in the error: %v", err)
			}
		})
	}
	s, err := LoadSettings(strings.NewReader("{" + base + "}"))
	if err != nil {
		t.Fatal(err)
	}
	if got := Redact(s.Database.URL); strings.Contains(got, "secret-pw") || !strings.Contains(got, "db:5432") {
		t.Errorf("Redact: got %q", got)
	}
	if s.Slot != DefaultSlot || s.NightlyAt.Hour != 21 || s.Panel.Green != 17 {
		t.Errorf("defaults not applied: %+v", s)
	}
}
