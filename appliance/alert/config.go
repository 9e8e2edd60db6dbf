// Package alert tells the practice manager, by e-mail and webhook, when the
// box needs someone: it reads the status document's conditions, debounces
// them, respects quiet hours, reminds while a problem lasts, says when it is
// resolved, and sends a daily summary.
package alert

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/clinicbox/clinicbox/rotation/civil"
)

// Config is the alerts part of the practice's settings. The zero value of
// each field is documented; New applies the defaults.
type Config struct {
	SMTP    *SMTPConfig    `json:"smtp,omitempty"`    // nil: no e-mail
	Webhook *WebhookConfig `json:"webhook,omitempty"` // nil: no webhook
	// QuietHours hold attention alerts (not failures) until they end.
	QuietHours civil.Span `json:"quiet_hours,omitzero"`
	// Location is the practice's time zone, for quiet hours, the summary
	// and dates in messages; nil means UTC. The appliance sets it from the
	// rotation settings.
	Location *time.Location `json:"-"`
	// SummaryAt is the local time of the daily summary e-mail; nil means
	// no summary.
	SummaryAt *civil.TimeOfDay `json:"summary_at,omitempty"`
	// Debounce is how long a condition must last before it is alerted,
	// by condition name ("swap due") or severity ("attention",
	// "failure"); defaults: failure 2m, attention 15m.
	Debounce map[string]Duration `json:"debounce,omitempty"`
	// Remind is the least time between two alerts of one condition, by
	// name or severity; defaults: failure 4h, attention 24h.
	Remind map[string]Duration `json:"remind,omitempty"`
	// Daily names conditions alerted at most once per local day; nil means
	// ["swap due"].
	Daily []string `json:"daily,omitempty"`
	// ClearAfter is how long a condition must be gone before "resolved" is
	// sent (a condition back within it is the same problem); zero means 5m.
	ClearAfter Duration `json:"clear_after,omitempty"`
	// StateDir keeps the notifier's state across restarts (on /perm).
	StateDir string `json:"state_dir"`
	// Hostname is the box's name, shown in every subject.
	Hostname string `json:"hostname"`
}

// SMTPConfig is how the box sends e-mail.
type SMTPConfig struct {
	// Server is host:port of the mail server, such as smtp.example.com:587.
	Server string `json:"server"`
	// Security is "starttls" (the default: the connection must be
	// upgraded to TLS), "tls" (TLS from the start, usually port 465) or
	// "none" (plain text, only for a relay on the practice's LAN; no
	// password may be sent).
	Security string `json:"security,omitempty"`
	// Username and Password (or PasswordFile) authenticate with PLAIN or
	// LOGIN over TLS; empty Username sends without authentication.
	Username     string `json:"username,omitempty"`
	Password     string `json:"password,omitempty"`
	PasswordFile string `json:"password_file,omitempty"`
	// CAFile is a PEM file of extra certificate authorities to trust, for
	// a relay with the practice's own certificate.
	CAFile string   `json:"ca_file,omitempty"`
	From   string   `json:"from"`
	To     []string `json:"to"`
}

// WebhookConfig is an HTTP endpoint that receives alerts as JSON.
type WebhookConfig struct {
	URL string `json:"url"`
	// Token, when set, is sent as "Authorization: Bearer TOKEN".
	Token string `json:"token,omitempty"`
}

// Duration is a time.Duration written as "15m" or "4h" in JSON.
type Duration time.Duration

// MarshalText writes d as "15m0s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads "15m", "4h", "90s".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("alert: %q is not a duration; write it as \"15m\" or \"4h\"", b)
	}
	*d = Duration(v)
	return nil
}

// Validate reports the first setting the notifier cannot work with, naming
// the field and the fix.
func (c *Config) Validate() error {
	if c.StateDir == "" {
		return errors.New("alert: alerts.state_dir: missing; the appliance sets it to a directory on /perm")
	}
	if c.SMTP != nil {
		if err := c.SMTP.validate(); err != nil {
			return err
		}
	}
	if c.Webhook != nil {
		if err := c.Webhook.validate(); err != nil {
			return err
		}
	}
	if c.SummaryAt != nil && c.SMTP == nil {
		return errors.New("alert: alerts.summary_at: the daily summary is sent by e-mail; configure alerts.smtp or remove summary_at")
	}
	for field, m := range map[string]map[string]Duration{"debounce": c.Debounce, "remind": c.Remind} {
		for k, d := range m {
			if d < 0 {
				return fmt.Errorf("alert: alerts.%s[%q]: negative; give a duration such as \"15m\"", field, k)
			}
		}
	}
	if c.ClearAfter < 0 {
		return errors.New("alert: alerts.clear_after: negative; give a duration such as \"5m\"")
	}
	return nil
}

func (s *SMTPConfig) validate() error {
	host, port, err := net.SplitHostPort(s.Server)
	if err != nil || host == "" || port == "" {
		return fmt.Errorf("alert: alerts.smtp.server: %q is not host:port; write it as smtp.example.com:587", s.Server)
	}
	if err := s.validateSecurity(); err != nil {
		return err
	}
	return s.validateAddresses()
}

// validateSecurity checks the connection's security and the credentials
// sent over it.
func (s *SMTPConfig) validateSecurity() error {
	switch s.Security {
	case "", "starttls", "tls":
	case "none":
		if s.Username != "" {
			return errors.New("alert: alerts.smtp.username: a password may only be sent over TLS; set security to \"starttls\" or \"tls\", or remove the username for a LAN relay")
		}
	default:
		return fmt.Errorf("alert: alerts.smtp.security: %q; use \"starttls\", \"tls\" or (for a relay on the LAN) \"none\"", s.Security)
	}
	if s.Username != "" && s.Password == "" && s.PasswordFile == "" {
		return errors.New("alert: alerts.smtp.password: missing for the username; set password or password_file")
	}
	if s.PasswordFile != "" {
		if _, err := os.Stat(s.PasswordFile); err != nil {
			return fmt.Errorf("alert: alerts.smtp.password_file: %v; put the mail password in that file", err)
		}
	}
	return nil
}

// validateAddresses checks the sender and the recipients.
func (s *SMTPConfig) validateAddresses() error {
	if _, err := mail.ParseAddress(s.From); err != nil {
		return fmt.Errorf("alert: alerts.smtp.from: %q is not an e-mail address; write it as clinicbox@practice.example", s.From)
	}
	if len(s.To) == 0 {
		return errors.New("alert: alerts.smtp.to: no recipients; list the practice manager's e-mail address")
	}
	for _, to := range s.To {
		if _, err := mail.ParseAddress(to); err != nil {
			return fmt.Errorf("alert: alerts.smtp.to: %q is not an e-mail address", to)
		}
	}
	return nil
}

func (w *WebhookConfig) validate() error {
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("alert: alerts.webhook.url: not an http(s) URL; write it as https://hooks.example.com/...")
	}
	if u.Scheme == "http" && w.Token != "" && !isLoopback(u.Hostname()) {
		return errors.New("alert: alerts.webhook.token: a token may only be sent over https; use an https:// URL")
	}
	if strings.ContainsAny(w.Token, "\r\n") {
		return errors.New("alert: alerts.webhook.token: contains a line break; paste the token on one line")
	}
	return nil
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}
