package appliance

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/clinicbox/clinicbox/appliance/offsite"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
	"github.com/clinicbox/clinicbox/drivers/postgres"
)

// OffsiteSettings are the settings file's "offsite" section: the vault on
// the practice's tailnet.
type OffsiteSettings struct {
	// Name names the destination; its slot is clinicbox_offsite_NAME.
	Name string `json:"name"`
	// VaultURL is the vault's address on the tailnet.
	VaultURL string `json:"vault_url"`
	// VaultURLs are further vault nodes sharing the first's bucket, tried
	// in turn when the one in use is unreachable or passes the box on.
	VaultURLs []string `json:"vault_urls,omitempty"`
	// AuthKeyFile holds a Tailscale auth key for the first start; after
	// that the node's state under the state directory keeps it logged in.
	AuthKeyFile string `json:"auth_key_file,omitempty"`
	Hostname    string `json:"hostname,omitempty"`
	ControlURL  string `json:"control_url,omitempty"`
	// OfficeHours caps uploads of base backups during office hours so the
	// clinic's link stays usable; night is uncapped unless NightBits is set.
	OfficeFrom int   `json:"office_from,omitempty"`
	OfficeTo   int   `json:"office_to,omitempty"`
	OfficeBits int64 `json:"office_bits_per_second,omitempty"`
	NightBits  int64 `json:"night_bits_per_second,omitempty"`
	// EveryDays is the longest time between base backups in the vault;
	// zero means 7.
	EveryDays int `json:"every_days,omitempty"`
	// ContinueNamespace is the vault namespace of the box this one
	// replaces (the old box's node ID, as the vault's status lists it):
	// the box asks the vault once at start to let it continue there.
	ContinueNamespace string `json:"continue_namespace,omitempty"`
}

// OffsiteSettings reads the offsite section; ok is false when none is set.
func (s *Settings) OffsiteSettings() (o OffsiteSettings, ok bool, err error) {
	if len(s.Offsite) == 0 {
		return o, false, nil
	}
	if err := strictJSON(s.Offsite, &o, "offsite"); err != nil {
		return o, false, err
	}
	if o.Name == "" {
		o.Name = "vault"
	}
	if !postgres.ValidSlotName(o.Name) {
		return o, false, fmt.Errorf("settings: offsite.name: %q; use lowercase letters, digits and underscores", o.Name)
	}
	if err := o.checkVaultURLs(); err != nil {
		return o, false, err
	}
	if o.OfficeFrom < 0 || o.OfficeTo > 24 || o.OfficeFrom > o.OfficeTo || o.OfficeBits < 0 || o.NightBits < 0 {
		return o, false, errors.New("settings: offsite.office_from/office_to/..._bits_per_second: hours 0-24 with from before to, and bit rates of 0 (no cap) or more")
	}
	if o.ContinueNamespace != "" && !wire.Namespace.MatchString(o.ContinueNamespace) {
		return o, false, fmt.Errorf("settings: offsite.continue_namespace: %q; copy the old box's namespace as the vault's status lists it (letters, digits, _ and -)", o.ContinueNamespace)
	}
	if o.Hostname == "" {
		o.Hostname = "clinicbox"
	}
	return o, true, nil
}

// AuthKey reads the tailnet auth key, if a file is set.
func (o OffsiteSettings) AuthKey() (string, error) {
	if o.AuthKeyFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(o.AuthKeyFile)
	if err != nil {
		return "", fmt.Errorf("settings: offsite.auth_key_file: %v", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// ShipperConfig is the offsite shipper's configuration for these settings.
func (o OffsiteSettings) ShipperConfig(dbURL string, recipients []string) offsite.Config {
	cfg := offsite.Config{Name: o.Name, DB: dbURL, Recipients: recipients, VaultURL: o.VaultURL, VaultURLs: o.VaultURLs,
		Schedule: offsite.Schedule{Every: time.Duration(o.EveryDays) * 24 * time.Hour}, ContinueNamespace: o.ContinueNamespace}
	if o.OfficeBits > 0 || o.NightBits > 0 {
		from, to := o.OfficeFrom, o.OfficeTo
		if from == 0 && to == 0 {
			from, to = 7, 19
		}
		cfg.Bandwidth = offsite.OfficeHours(from, to, o.OfficeBits, o.NightBits)
	}
	return cfg
}

// checkVaultURLs checks the vault nodes' addresses.
func (o OffsiteSettings) checkVaultURLs() error {
	if !vaultURL(o.VaultURL) {
		return errors.New("settings: offsite.vault_url: set it to the vault's tailnet address, such as http://clinicvault:8443")
	}
	for _, u := range o.VaultURLs {
		if !vaultURL(u) {
			return fmt.Errorf("settings: offsite.vault_urls: %q: list the other vault nodes' tailnet addresses, such as http://clinicvault-b:8443", u)
		}
	}
	return nil
}

// vaultURL reports whether s is an http or https address with a host.
func vaultURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Host != "" && (u.Scheme == "http" || u.Scheme == "https")
}
