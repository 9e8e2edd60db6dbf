package appliance

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/clinicbox/clinicbox/appliance/restore"
)

// DrillSettings are the settings file's "drills" section: when the box
// proves its own backups by restoring them.
type DrillSettings struct {
	// EveryDays is how often each drive is drilled; zero means 7.
	EveryDays int `json:"every_days,omitempty"`
	// AfterEnrollment drills a drive as soon as its first backup verified;
	// nil means yes.
	AfterEnrollment *bool `json:"after_enrollment,omitempty"`
	// Checks is a check file of the practice's own checks (see
	// restore.ParseChecks); empty means none besides the box's own.
	Checks string `json:"checks,omitempty"`
	// Off turns the scheduled drills off; the page's button still runs one.
	Off bool `json:"off,omitempty"`
}

// DrillSettings reads the drills section with its defaults filled in.
func (s *Settings) DrillSettings() (DrillSettings, error) {
	var d DrillSettings
	if err := strictJSON(s.Drills, &d, "drills"); err != nil {
		return d, err
	}
	if d.EveryDays < 0 || d.EveryDays > 92 {
		return d, fmt.Errorf("settings: drills.every_days: %d; give a number of days from 1 to 92, or 0 for weekly", d.EveryDays)
	}
	if d.EveryDays == 0 {
		d.EveryDays = 7
	}
	if d.AfterEnrollment == nil {
		yes := true
		d.AfterEnrollment = &yes
	}
	if d.Checks != "" {
		if _, err := d.checks(); err != nil {
			return d, err
		}
	}
	return d, nil
}

// Every is how often each drive is drilled.
func (d DrillSettings) Every() time.Duration { return time.Duration(d.EveryDays) * 24 * time.Hour }

// checks reads the practice's check file; nil when none is set.
func (d DrillSettings) checks() (*restore.Checks, error) {
	if d.Checks == "" {
		return nil, nil
	}
	f, err := os.Open(d.Checks)
	if err != nil {
		return nil, fmt.Errorf("settings: drills.checks: %v; give the path of a check file on /perm, or remove the field", err)
	}
	defer f.Close()
	c, err := restore.ParseChecks(io.LimitReader(f, 1<<20)) // a check file is a page of SQL, not a dump
	if err != nil {
		return nil, fmt.Errorf("settings: drills.checks: %s: %w", d.Checks, err)
	}
	return c, nil
}
