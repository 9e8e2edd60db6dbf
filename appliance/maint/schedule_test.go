package maint

import (
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/rotation/civil"
)

func tod(h, m int) civil.TimeOfDay { return civil.TimeOfDay{Hour: h, Minute: m} }

func TestDue(t *testing.T) {
	chicago, err := time.LoadLocation("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, chicago)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	night := Window{Days: []string{"Sat", "sun"}, Start: tod(23, 0), End: tod(4, 0)}
	early := Window{Start: tod(1, 0), End: tod(5, 0)} // every day
	// 2026-03-07 is a Saturday; 2026-03-08 03:00 is when Chicago's clocks
	// jump to daylight saving time.
	tests := []struct {
		name    string
		w       Window
		now     string
		lastRun string // "" for never
		want    bool
	}{
		{"never ran, inside", early, "2026-03-04 02:00", "", true},
		{"before the window", early, "2026-03-04 00:59", "", false},
		{"at the start", early, "2026-03-04 01:00", "", true},
		{"at the end", early, "2026-03-04 05:00", "", false},
		{"ran in this window", early, "2026-03-04 04:00", "2026-03-04 01:00", false},
		{"ran in yesterday's window", early, "2026-03-04 01:30", "2026-03-03 01:00", true},
		{"wrong weekday", night, "2026-03-05 23:30", "", false},
		{"Saturday night", night, "2026-03-07 23:30", "", true},
		{"Saturday's window after midnight", night, "2026-03-08 01:00", "2026-03-01 00:30", true},
		{"Saturday's window, already ran", night, "2026-03-08 03:30", "2026-03-07 23:00", false},
		{"Sunday's window is not Monday's", night, "2026-03-10 02:00", "", false},
		{"Sunday night into Monday", night, "2026-03-09 02:00", "2026-03-08 00:10", true},
		{"after the window across the DST jump", night, "2026-03-08 04:00", "", false},
		{"Friday night is no window", night, "2026-03-07 01:00", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var last time.Time
			if tc.lastRun != "" {
				last = at(tc.lastRun)
			}
			s := Scheduler{Window: tc.w, Location: chicago}
			if got := s.Due(at(tc.now).UTC(), last); got != tc.want {
				t.Errorf("Due(%s, %q): got %v; want %v", tc.now, tc.lastRun, got, tc.want)
			}
		})
	}
}

func TestOpenEnd(t *testing.T) {
	s := Scheduler{Window: Window{Start: tod(22, 30), End: tod(2, 0)}}
	now := time.Date(2026, 3, 4, 23, 0, 0, 0, time.UTC)
	start, end, ok := s.Open(now)
	wantStart, wantEnd := time.Date(2026, 3, 4, 22, 30, 0, 0, time.UTC), time.Date(2026, 3, 5, 2, 0, 0, 0, time.UTC)
	if !ok || !start.Equal(wantStart) || !end.Equal(wantEnd) {
		t.Errorf("got %v, %v, %v; want %v, %v, true", start, end, ok, wantStart, wantEnd)
	}
}

func TestValidate(t *testing.T) {
	good := Window{Days: []string{"Sat"}, Start: tod(1, 0), End: tod(5, 0)}
	tests := []struct {
		name string
		s    Settings
		want string // substring of the error; "" for none
	}{
		{"good", Settings{Enabled: true, Window: good}, ""},
		{"disabled is never wrong", Settings{Window: Window{Days: []string{"Caturday"}}}, ""},
		{"bad day", Settings{Enabled: true, Window: Window{Days: []string{"Caturday"}, Start: tod(1, 0), End: tod(2, 0)}}, "maintenance.window.days"},
		{"empty window", Settings{Enabled: true, Window: Window{Start: tod(3, 0), End: tod(3, 0)}}, "start and end are equal"},
		{"bad time", Settings{Enabled: true, Window: Window{Start: tod(25, 0), End: tod(3, 0)}}, "maintenance.window.start"},
		{"empty database", Settings{Enabled: true, Window: good, Databases: []string{" "}}, "maintenance.databases"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.s.Validate()
			if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v; want an error containing %q", err, tc.want)
			}
		})
	}
}
