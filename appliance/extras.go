package appliance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/clinicbox/clinicbox/appliance/alert"
	"github.com/clinicbox/clinicbox/appliance/maint"
	"github.com/clinicbox/clinicbox/rotation/civil"
)

// strictJSON decodes an optional settings section, rejecting unknown fields.
func strictJSON(raw json.RawMessage, v any, field string) error {
	if len(raw) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("settings: %s: %v; check the field names against the README", field, err)
	}
	return nil
}

// AlertConfig reads the alerts section; ok is false when none is set.
func (s *Settings) AlertConfig(stateDir, hostname string) (cfg alert.Config, ok bool, err error) {
	if len(s.Alerts) == 0 {
		return cfg, false, nil
	}
	if err := strictJSON(s.Alerts, &cfg, "alerts"); err != nil {
		return cfg, false, err
	}
	if cfg.Location, err = s.Location(); err != nil {
		return cfg, false, err
	}
	if cfg.QuietHours == (civil.Span{}) {
		cfg.QuietHours = s.QuietHours
	}
	cfg.StateDir, cfg.Hostname = filepath.Join(stateDir, "alerts"), hostname
	return cfg, true, cfg.Validate()
}

// MaintSettings reads the maintenance section.
func (s *Settings) MaintSettings() (maint.Settings, error) {
	var m maint.Settings
	if err := strictJSON(s.Maintenance, &m, "maintenance"); err != nil {
		return m, err
	}
	return m, m.Validate()
}

// NewNotifier builds the alert notifier from the settings, or returns nil
// when no alerts are configured. Run its Run method next to the appliance.
func NewNotifier(s *Settings, stateDir, hostname string, log *slog.Logger) (*alert.Notifier, error) {
	cfg, ok, err := s.AlertConfig(stateDir, hostname)
	if err != nil || !ok {
		return nil, err
	}
	return alert.New(cfg, log)
}

// maintenance runs the scheduled VACUUM/REINDEX when its window is open.
func (a *Appliance) maintenance(ctx context.Context) {
	if a.maint == nil || a.maintRunning || !a.cfg.ClockTrusted() {
		return
	}
	now := a.cfg.Now()
	if !a.maint.Scheduler.Due(now, a.book.Maint.LastRun) {
		return
	}
	a.maintRunning = true
	a.spawn(ctx, func(ctx context.Context) {
		res, ran := a.maint.RunIfDue(ctx, now, a.book.Maint.LastRun)
		a.post(ctx, func() {
			a.maintRunning = false
			if ran {
				a.book.Maint = res.Status()
				a.event("maintenance", "Database maintenance: "+res.String())
			}
		})
	})
}
