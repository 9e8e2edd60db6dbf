package appliance

import (
	"strings"
	"testing"
)

// The diagnostic bundle's settings keep what support needs (hosts, where
// secrets are kept) and lose every secret, wherever in the settings it is.
func TestBundleSettingsHoldNoSecrets(t *testing.T) {
	set, err := LoadSettings(strings.NewReader(`{
		"database": {"url": "postgres://clinicbox:db-pw-1@10.0.0.5:5432/postgres?sslpassword=db-pw-2&sslmode=require", "password_file": "/perm/clinicbox/db-password"},
		"rotation": {"time_zone": "America/Chicago", "swap_at": "08:00"},
		"alerts": {"smtp": {"server": "mail.example.org:587", "username": "box", "password": "smtp-pw-3", "from": "box@example.org", "to": ["m@example.org"]},
		           "webhook": {"url": "https://hooks.example.org/services/T0/B0/hook-path-4?sig=hook-sig-5", "token": "hook-token-6"}},
		"offsite": {"name": "home", "vault_url": "http://backup:vault-pw-7@clinicvault:8443", "control_url": "https://hs.example.org/?key=ctl-key-8",
		            "auth_key_file": "/perm/clinicbox/ts-authkey", "office_bits_per_second": 128000},
		"support": {"support": ["tag:support"], "admin": ["it@example.org"]}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	got := string(redactedSettings(set))
	for _, secret := range []string{"db-pw-1", "db-pw-2", "smtp-pw-3", "hook-path-4", "hook-sig-5", "hook-token-6", "vault-pw-7", "ctl-key-8"} {
		t.Run(secret, func(t *testing.T) {
			if strings.Contains(got, secret) {
				t.Errorf("got settings holding %s; want it redacted:\n%s", secret, got)
			}
		})
	}
	for _, keep := range []string{"10.0.0.5:5432", "/perm/clinicbox/db-password", "mail.example.org:587", "https://hooks.example.org/xxxxx",
		"clinicvault:8443", "/perm/clinicbox/ts-authkey", "tag:support", "it@example.org", "America/Chicago"} {
		if !strings.Contains(got, keep) {
			t.Errorf("got settings without %s; want it kept for support:\n%s", keep, got)
		}
	}
}
