// Package maint schedules the clinic database's routine maintenance
// (VACUUM (ANALYZE) and optionally REINDEX CONCURRENTLY) inside the
// practice's maintenance window and turns the outcome into a short result
// for the status document.
package maint

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/clinicbox/clinicbox/rotation/civil"
)

// Settings are the maintenance part of the practice's settings.
type Settings struct {
	// Enabled turns scheduled maintenance on; off by default because the
	// role needs extra rights on the clinic server (see drivers/postgres).
	Enabled bool `json:"enabled"`
	// Window is when maintenance may run.
	Window Window `json:"window"`
	// Reindex rebuilds every user table's indexes after vacuuming it.
	Reindex bool `json:"reindex,omitempty"`
	// Databases limits maintenance to these databases; empty means all.
	Databases []string `json:"databases,omitempty"`
}

// Window is a weekly maintenance window in the practice's time zone. It
// starts on each listed day at Start and ends at End, on the next day when
// End is not after Start (a window from 23:00 to 04:00).
type Window struct {
	// Days are "Mon", "Tue", ...; empty means every day.
	Days  []string        `json:"days,omitempty"`
	Start civil.TimeOfDay `json:"start"`
	End   civil.TimeOfDay `json:"end"`
}

var weekdays = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday,
	"wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

// Validate names the first setting that cannot work and the fix.
func (s Settings) Validate() error {
	if !s.Enabled {
		return nil
	}
	if _, err := s.Window.days(); err != nil {
		return err
	}
	for name, t := range map[string]civil.TimeOfDay{"start": s.Window.Start, "end": s.Window.End} {
		if err := t.Validate(); err != nil {
			return fmt.Errorf("maint: maintenance.window.%s: %w; write it as \"02:00\"", name, err)
		}
	}
	if s.Window.Start == s.Window.End {
		return errors.New("maint: maintenance.window: start and end are equal; give a window such as 01:00 to 05:00, outside office hours")
	}
	for _, db := range s.Databases {
		if strings.TrimSpace(db) == "" {
			return errors.New("maint: maintenance.databases: an empty name; list database names, or leave the list out for all")
		}
	}
	return nil
}

func (w Window) days() (map[time.Weekday]bool, error) {
	set := map[time.Weekday]bool{}
	for _, d := range w.Days {
		wd, ok := weekdays[strings.ToLower(d)[:min(3, len(d))]]
		if !ok {
			return nil, fmt.Errorf("maint: maintenance.window.days: %q is not a weekday; use Mon, Tue, Wed, Thu, Fri, Sat or Sun", d)
		}
		set[wd] = true
	}
	return set, nil
}

// Scheduler decides when maintenance runs: once per window, within it.
type Scheduler struct {
	Window Window
	// Location is the practice's time zone; nil means UTC.
	Location *time.Location
}

// Open returns the start and end of the window occurrence that now falls
// in, and whether there is one.
func (s Scheduler) Open(now time.Time) (start, end time.Time, ok bool) {
	loc := s.Location
	if loc == nil {
		loc = time.UTC
	}
	days, err := s.Window.days()
	if err != nil || s.Window.Start == s.Window.End {
		return time.Time{}, time.Time{}, false
	}
	local := now.In(loc)
	// An occurrence that started yesterday may still be open (23:00-04:00).
	for back := 1; back >= 0; back-- {
		y, m, d := local.AddDate(0, 0, -back).Date()
		start = time.Date(y, m, d, s.Window.Start.Hour, s.Window.Start.Minute, 0, 0, loc)
		end = time.Date(y, m, d, s.Window.End.Hour, s.Window.End.Minute, 0, 0, loc)
		if !end.After(start) {
			end = time.Date(y, m, d+1, s.Window.End.Hour, s.Window.End.Minute, 0, 0, loc)
		}
		if len(days) > 0 && !days[start.Weekday()] {
			continue
		}
		if !now.Before(start) && now.Before(end) {
			return start, end, true
		}
	}
	return time.Time{}, time.Time{}, false
}

// Due reports whether maintenance should start now: now is inside a window
// and the last run (zero for never) began before this window opened.
func (s Scheduler) Due(now, lastRun time.Time) bool {
	start, _, ok := s.Open(now)
	return ok && lastRun.Before(start)
}
