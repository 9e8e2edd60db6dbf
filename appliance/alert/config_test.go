package alert

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/rotation/civil"
)

func TestValidate(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("mail-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mail := func(f func(*SMTPConfig)) *SMTPConfig {
		s := &SMTPConfig{Server: "smtp.example.com:587", Username: "box", PasswordFile: pwFile,
			From: "Clinic Box <box@practice.example>", To: []string{"manager@practice.example"}}
		f(s)
		return s
	}
	keep := func(*SMTPConfig) {}
	tests := []struct {
		name string
		cfg  Config
		want string // substring; "" for valid
	}{
		{"e-mail", Config{SMTP: mail(keep)}, ""},
		{"LAN relay", Config{SMTP: mail(func(s *SMTPConfig) { s.Security, s.Username, s.PasswordFile = "none", "", "" })}, ""},
		{"webhook", Config{Webhook: &WebhookConfig{URL: "https://hooks.example.com/x", Token: "t"}}, ""},
		{"no state dir", Config{StateDir: "-"}, "alerts.state_dir"},
		{"server without port", Config{SMTP: mail(func(s *SMTPConfig) { s.Server = "smtp.example.com" })}, "alerts.smtp.server"},
		{"password in plain text", Config{SMTP: mail(func(s *SMTPConfig) { s.Security = "none" })}, "only be sent over TLS"},
		{"unknown security", Config{SMTP: mail(func(s *SMTPConfig) { s.Security = "ssl" })}, "alerts.smtp.security"},
		{"username without password", Config{SMTP: mail(func(s *SMTPConfig) { s.PasswordFile = "" })}, "alerts.smtp.password"},
		{"missing password file", Config{SMTP: mail(func(s *SMTPConfig) { s.PasswordFile = "/nonexistent/pw" })}, "alerts.smtp.password_file"},
		{"bad sender", Config{SMTP: mail(func(s *SMTPConfig) { s.From = "clinicbox" })}, "alerts.smtp.from"},
		{"no recipients", Config{SMTP: mail(func(s *SMTPConfig) { s.To = nil })}, "alerts.smtp.to"},
		{"bad recipient", Config{SMTP: mail(func(s *SMTPConfig) { s.To = []string{"manager at practice"} })}, "alerts.smtp.to"},
		{"webhook not http", Config{Webhook: &WebhookConfig{URL: "ftp://x"}}, "alerts.webhook.url"},
		{"token over http", Config{Webhook: &WebhookConfig{URL: "http://hooks.example.com/x", Token: "t"}}, "alerts.webhook.token"},
		{"summary without e-mail", Config{SummaryAt: &civil.TimeOfDay{Hour: 7}}, "alerts.summary_at"},
		{"negative debounce", Config{Debounce: map[string]Duration{"swap due": -1}}, `alerts.debounce["swap due"]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			switch tc.cfg.StateDir {
			case "":
				tc.cfg.StateDir = t.TempDir()
			case "-":
				tc.cfg.StateDir = ""
			}
			err := tc.cfg.Validate()
			if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v; want an error naming %q", err, tc.want)
			}
		})
	}
}

// The settings file carries durations and times as words.
func TestConfigJSON(t *testing.T) {
	const text = `{"smtp": {"server": "smtp.example.com:587", "from": "box@practice.example", "to": ["m@practice.example"]},
		"quiet_hours": {"start": "22:00", "end": "07:00"}, "summary_at": "07:30",
		"debounce": {"swap due": "30m", "failure": "90s"}, "remind": {"attention": "12h"}, "state_dir": "/perm/clinicbox/alerts"}`
	var c Config
	if err := json.Unmarshal([]byte(text), &c); err != nil {
		t.Fatal(err)
	}
	if c.SummaryAt == nil || c.SummaryAt.Hour != 7 || c.SummaryAt.Minute != 30 || c.QuietHours.Start.Hour != 22 ||
		time.Duration(c.Debounce["swap due"]) != 30*time.Minute || time.Duration(c.Debounce["failure"]) != 90*time.Second ||
		time.Duration(c.Remind["attention"]) != 12*time.Hour {
		t.Errorf("got %+v", c)
	}
	if err := json.Unmarshal([]byte(`{"debounce": {"x": "soon"}}`), &c); err == nil || !strings.Contains(err.Error(), "15m") {
		t.Errorf("bad duration: got %v; want an error showing the form", err)
	}
}

// A webhook that refuses (4xx) is not retried; Health says so until a
// later delivery succeeds.
func TestRefusedWebhookHealth(t *testing.T) {
	h := &hookServer{statuses: []int{403}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	n, err := New(Config{StateDir: t.TempDir(), Hostname: "box", Webhook: &WebhookConfig{URL: srv.URL}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	n.Update(base.Add(3*time.Minute), stat(base, cond("backup failed", status.Failure, base)))
	n.deliverDue(context.Background())
	if s := n.Stats(); s.Pending != 0 || s.Dropped != 1 || s.Failed != 1 {
		t.Errorf("stats: got %+v; want 1 dropped, 1 failed, none pending", s)
	}
	if err := n.Health(); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("health: got %v; want the refusal", err)
	}
	h.mu.Lock()
	h.statuses = []int{200}
	h.mu.Unlock()
	n.Update(base.Add(4*time.Minute), stat(base, cond("backup failed", status.Failure, base), cond("drive failing", status.Failure, base)))
	n.deliverDue(context.Background())
	if err := n.Health(); err != nil {
		t.Errorf("health after a delivery: %v", err)
	}
}
