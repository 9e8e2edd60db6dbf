package rotation

import (
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/rotation/civil"
)

// newYork loads the zone the calendar tests use, or fails.
func newYork(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatalf("load zone: %v", err)
	}
	return loc
}

func TestCalendarSwapDue(t *testing.T) {
	ny := newYork(t)
	cal := Calendar{Location: ny, SwapAt: civil.TimeOfDay{Hour: 8, Minute: 0}, Holidays: []Date{{2025, time.July, 4}}}
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, ny)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name          string
		inserted, now string
		want          bool
	}{
		{"one minute before the swap time", "2025-06-02 08:05", "2025-06-03 07:59", false},
		{"at the swap time", "2025-06-02 08:05", "2025-06-03 08:00", true},
		{"put in early the same morning", "2025-06-03 07:00", "2025-06-03 08:00", false},
		{"put in early, next morning", "2025-06-03 07:00", "2025-06-04 08:00", true},
		{"put in late at night", "2025-06-02 23:50", "2025-06-03 08:00", true},
		{"Friday to Saturday", "2025-06-06 08:05", "2025-06-07 12:00", false},
		{"Friday to Monday before", "2025-06-06 08:05", "2025-06-09 07:59", false},
		{"Friday to Monday", "2025-06-06 08:05", "2025-06-09 08:00", true},
		{"put in on Saturday", "2025-06-07 10:00", "2025-06-09 08:00", true},
		{"before Independence Day", "2025-07-03 08:05", "2025-07-04 09:00", false},
		{"over Independence Day", "2025-07-03 08:05", "2025-07-07 08:00", true},
		{"spring forward, before", "2025-03-07 08:05", "2025-03-10 07:59", false},
		{"spring forward, at 08:00 EDT", "2025-03-07 08:05", "2025-03-10 08:00", true},
		{"fall back, 07:30 EST is not yet due", "2025-10-31 08:05", "2025-11-03 07:30", false},
		{"fall back, at 08:00 EST", "2025-10-31 08:05", "2025-11-03 08:00", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cal.SwapDue(at(tt.inserted), at(tt.now)); got != tt.want {
				t.Errorf("SwapDue(%s, %s) = %v; want %v (due at %s)", tt.inserted, tt.now, got, tt.want, cal.SwapDueAt(at(tt.inserted)))
			}
		})
	}
}

func TestCalendarSwapTimeAcrossDST(t *testing.T) {
	ny := newYork(t)
	tests := []struct {
		name   string
		swapAt civil.TimeOfDay
		day    Date
		want   string // UTC
	}{
		{"EST morning", civil.TimeOfDay{Hour: 8, Minute: 0}, Date{2025, time.March, 7}, "2025-03-07T13:00:00Z"},
		{"EDT morning after spring forward", civil.TimeOfDay{Hour: 8, Minute: 0}, Date{2025, time.March, 10}, "2025-03-10T12:00:00Z"},
		{"EST morning after fall back", civil.TimeOfDay{Hour: 8, Minute: 0}, Date{2025, time.November, 3}, "2025-11-03T13:00:00Z"},
		{"skipped 02:30 moves to 03:30 EDT", civil.TimeOfDay{Hour: 2, Minute: 30}, Date{2025, time.March, 9}, "2025-03-09T07:30:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cal := Calendar{Location: ny, SwapAt: tt.swapAt}
			if got := cal.SwapTime(tt.day).UTC().Format(time.RFC3339); got != tt.want {
				t.Errorf("SwapTime(%s) = %s; want %s", tt.day, got, tt.want)
			}
		})
	}
	// The weekend of the spring change is 71 hours from Friday's swap to
	// Monday's; the autumn one is 73.
	cal := Calendar{Location: ny, SwapAt: civil.TimeOfDay{Hour: 8, Minute: 0}}
	for _, c := range []struct {
		fri, mon Date
		want     time.Duration
	}{
		{Date{2025, time.March, 7}, Date{2025, time.March, 10}, 71 * time.Hour},
		{Date{2025, time.October, 31}, Date{2025, time.November, 3}, 73 * time.Hour},
	} {
		if got := cal.SwapTime(c.mon).Sub(cal.SwapTime(c.fri)); got != c.want {
			t.Errorf("swap %s to %s: got %v; want %v", c.fri, c.mon, got, c.want)
		}
	}
}

func TestCalendarBusinessDays(t *testing.T) {
	cal := Calendar{SwapAt: civil.TimeOfDay{Hour: 8, Minute: 0}, Holidays: []Date{{2025, time.December, 25}, {2025, time.December, 26}}}
	tests := []struct {
		name string
		day  Date
		busy bool
		next Date
	}{
		{"Wednesday", Date{2025, time.December, 24}, true, Date{2025, time.December, 29}},
		{"Christmas holiday", Date{2025, time.December, 25}, false, Date{2025, time.December, 29}},
		{"Saturday", Date{2025, time.December, 27}, false, Date{2025, time.December, 29}},
		{"Monday", Date{2025, time.December, 29}, true, Date{2025, time.December, 30}},
		{"year end", Date{2025, time.December, 31}, true, Date{2026, time.January, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cal.IsBusinessDay(tt.day); got != tt.busy {
				t.Errorf("IsBusinessDay(%s) = %v; want %v", tt.day, got, tt.busy)
			}
			if got := cal.NextBusinessDay(tt.day); got != tt.next {
				t.Errorf("NextBusinessDay(%s) = %s; want %s", tt.day, got, tt.next)
			}
		})
	}
	sat := Calendar{Workdays: []time.Weekday{time.Saturday}}
	if !sat.IsBusinessDay(Date{2025, time.December, 27}) || sat.IsBusinessDay(Date{2025, time.December, 29}) {
		t.Errorf("a Saturday-only calendar: got Sat %v, Mon %v; want true, false",
			sat.IsBusinessDay(Date{2025, time.December, 27}), sat.IsBusinessDay(Date{2025, time.December, 29}))
	}
}

func TestCalendarSwapsBetween(t *testing.T) {
	cal := Calendar{SwapAt: civil.TimeOfDay{Hour: 8, Minute: 0}}
	at := func(s string) time.Time { v, _ := time.Parse("2006-01-02 15:04", s); return v }
	tests := []struct {
		from, to string
		want     int
	}{
		{"2025-06-02 08:05", "2025-06-02 20:00", 0},
		{"2025-06-02 08:05", "2025-06-03 08:00", 1},
		{"2025-06-02 07:00", "2025-06-02 08:00", 1},
		{"2025-06-06 08:05", "2025-06-09 07:59", 0},
		{"2025-06-06 08:05", "2025-06-13 08:00", 5},
		{"2025-06-06 08:05", "2025-06-01 08:00", 0},
	}
	for _, tt := range tests {
		if got := cal.SwapsBetween(at(tt.from), at(tt.to)); got != tt.want {
			t.Errorf("SwapsBetween(%s, %s) = %d; want %d", tt.from, tt.to, got, tt.want)
		}
	}
}

func TestCalendarValidateAndJSON(t *testing.T) {
	if err := (Calendar{Workdays: []time.Weekday{}}).Validate(); err == nil {
		t.Errorf("Validate with no workdays: got nil; want an error")
	}
	if err := (Calendar{SwapAt: civil.TimeOfDay{Hour: 25, Minute: 0}}).Validate(); err == nil {
		t.Errorf("Validate with swap at 25:00: got nil; want an error")
	}
	in := Calendar{Location: newYork(t), Workdays: []time.Weekday{time.Monday, time.Tuesday}, Holidays: []Date{{2025, time.July, 4}}, SwapAt: civil.TimeOfDay{Hour: 7, Minute: 45}}
	b, err := in.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"zone":"America/New_York","workdays":[1,2],"holidays":["2025-07-04"],"swap_at":"07:45"}`
	if string(b) != want {
		t.Errorf("got JSON %s; want %s", b, want)
	}
	var out Calendar
	if err := out.UnmarshalJSON(b); err != nil {
		t.Fatal(err)
	}
	if out.Location.String() != "America/New_York" || out.SwapAt != in.SwapAt || len(out.Holidays) != 1 || out.Holidays[0] != in.Holidays[0] {
		t.Errorf("round trip: got %+v; want %+v", out, in)
	}
}
