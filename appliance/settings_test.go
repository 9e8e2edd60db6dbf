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

func TestOffsiteSettings(t *testing.T) {
	base := `"database": {"url": "postgres://clinicbox@db:5432/postgres"}, "rotation": {"time_zone": "UTC"}`
	for _, tc := range []struct{ name, offsite, want string }{
		{"no url", `{"name": "home"}`, "offsite.vault_url"},
		{"bad name", `{"name": "Home Vault", "vault_url": "http://v:8443"}`, "offsite.name"},
		{"bad hours", `{"vault_url": "http://v:8443", "office_from": 19, "office_to": 7, "office_bits_per_second": 128000}`, "office_from"},
		{"unknown", `{"vault": "x"}`, "settings: offsite"},
		{"bad second node", `{"vault_url": "http://v:8443", "vault_urls": ["clinicvault-b"]}`, "offsite.vault_urls"},
		{"namespace out of its directory", `{"vault_url": "http://v:8443", "continue_namespace": "../nBOX1"}`, "offsite.continue_namespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := LoadSettings(strings.NewReader("{" + base + `, "offsite": ` + tc.offsite + "}"))
			if err == nil {
				_, _, err = s.OffsiteSettings()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v; want an error naming %q", err, tc.want)
			}
		})
	}
	s, _ := LoadSettings(strings.NewReader("{" + base + `, "offsite": {"name": "home", "vault_url": "http://clinicvault:8443", "vault_urls": ["http://clinicvault-b:8443"], "office_bits_per_second": 128000, "continue_namespace": "nOLDBOX"}}`))
	o, ok, err := s.OffsiteSettings()
	if err != nil || !ok || o.Hostname != "clinicbox" {
		t.Fatalf("got %+v %v %v", o, ok, err)
	}
	sc := o.ShipperConfig("postgres://x@db/postgres", []string{"age1xyz"})
	if sc.Bandwidth.BitsPerSecond[10] != 128000 || sc.Bandwidth.BitsPerSecond[2] != 0 || sc.Name != "home" {
		t.Errorf("shipper config %+v; want office hours capped at 128 kbit/s, nights free", sc.Bandwidth)
	}
	if len(sc.VaultURLs) != 1 || sc.VaultURLs[0] != "http://clinicvault-b:8443" {
		t.Errorf("shipper config's further vault nodes %v; want the second node", sc.VaultURLs)
	}
	if sc.ContinueNamespace != "nOLDBOX" {
		t.Errorf("shipper config continues namespace %q; want nOLDBOX", sc.ContinueNamespace)
	}
}
