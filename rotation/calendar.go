package rotation

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/clinicbox/clinicbox/rotation/civil"
)

// maxScanDays bounds every day-by-day walk of the calendar (ten years), so a
// calendar without working days cannot loop forever.
const maxScanDays = 3660

// Calendar is the practice's working week: which weekdays are business days,
// which dates are holidays, and at what local time the morning swap happens.
// All dates and times are taken in Location, so a swap at 08:00 stays at
// 08:00 local time across daylight-saving changes.
type Calendar struct {
	// Location is the practice's time zone; nil means UTC.
	Location *time.Location
	// Workdays are the business weekdays; nil means Monday to Friday.
	Workdays []time.Weekday
	// Holidays are dates on which the practice is closed.
	Holidays []Date
	// SwapAt is the local time of the morning swap; zero means midnight.
	SwapAt civil.TimeOfDay
}

// loc returns the calendar's location, UTC when unset.
func (c Calendar) loc() *time.Location {
	if c.Location == nil {
		return time.UTC
	}
	return c.Location
}

// Validate reports a calendar on which no swap could ever fall.
func (c Calendar) Validate() error {
	if c.Workdays != nil && len(c.Workdays) == 0 {
		return errors.New("rotation: calendar workdays: empty; list at least one weekday or leave it unset for Monday to Friday")
	}
	for _, w := range c.Workdays {
		if w < time.Sunday || w > time.Saturday {
			return fmt.Errorf("rotation: calendar workdays: %d is not a weekday (0 Sunday to 6 Saturday)", int(w))
		}
	}
	if err := c.SwapAt.Validate(); err != nil {
		return fmt.Errorf("rotation: calendar swap time: %w", err)
	}
	return nil
}

// IsBusinessDay reports whether d is a working weekday and not a holiday.
func (c Calendar) IsBusinessDay(d Date) bool {
	wd := d.Weekday()
	work := c.Workdays == nil && wd != time.Saturday && wd != time.Sunday
	for _, w := range c.Workdays {
		work = work || w == wd
	}
	if !work {
		return false
	}
	for _, h := range c.Holidays {
		if h == d {
			return false
		}
	}
	return true
}

// DateOf returns the local calendar date of t.
func (c Calendar) DateOf(t time.Time) Date { return DateOf(t.In(c.loc())) }

// SwapTime returns the instant of the morning swap on day d, in Location.
// On a day when that wall-clock time does not exist (it falls in the hour
// skipped in spring), the swap moves forward by the gap: 02:30 becomes
// 03:30. Go's time.Date leaves the choice in a gap unspecified (it moves
// back), so the offset in force before the gap is applied here.
func (c Calendar) SwapTime(d Date) time.Time {
	t := time.Date(d.Year, d.Month, d.Day, c.SwapAt.Hour, c.SwapAt.Minute, 0, 0, c.loc())
	if t.Hour() == c.SwapAt.Hour && t.Minute() == c.SwapAt.Minute {
		return t
	}
	_, before := t.Add(-12 * time.Hour).Zone()
	return time.Date(d.Year, d.Month, d.Day, c.SwapAt.Hour, c.SwapAt.Minute, 0, 0, time.FixedZone("", before)).In(c.loc())
}

// NextBusinessDay returns the first business day strictly after d.
func (c Calendar) NextBusinessDay(d Date) Date {
	for i := 0; i < maxScanDays; i++ {
		d = d.AddDays(1)
		if c.IsBusinessDay(d) {
			return d
		}
	}
	return d
}

// SwapDueAt returns when a drive put in at inserted is due to come out: the
// swap time of the first business day after the local date of insertion. A
// drive put in early on Monday morning is therefore due on Tuesday, not an
// hour later; one put in on Friday is due on Monday.
func (c Calendar) SwapDueAt(inserted time.Time) time.Time {
	return c.SwapTime(c.NextBusinessDay(c.DateOf(inserted)))
}

// SwapDue reports whether a drive put in at inserted is due for a swap at now.
func (c Calendar) SwapDue(inserted, now time.Time) bool {
	return !now.Before(c.SwapDueAt(inserted))
}

// SwapsBetween counts the business-day swap times in (from, to]: how many
// business mornings have passed. It is how long a drive has been away, in
// business days.
func (c Calendar) SwapsBetween(from, to time.Time) int {
	if !to.After(from) {
		return 0
	}
	n := 0
	d, end := c.DateOf(from), c.DateOf(to)
	for i := 0; i < maxScanDays && !end.Before(d); i++ {
		if c.IsBusinessDay(d) {
			s := c.SwapTime(d)
			if s.After(from) && !s.After(to) {
				n++
			}
		}
		d = d.AddDays(1)
	}
	return n
}

// calendarJSON is how a Calendar is written: the zone by its IANA name.
type calendarJSON struct {
	Zone     string          `json:"zone,omitempty"`
	Workdays []time.Weekday  `json:"workdays,omitempty"`
	Holidays []Date          `json:"holidays,omitempty"`
	SwapAt   civil.TimeOfDay `json:"swap_at"`
}

// MarshalJSON writes the calendar with its zone as an IANA name such as
// "America/New_York".
func (c Calendar) MarshalJSON() ([]byte, error) {
	return json.Marshal(calendarJSON{
		Zone:     c.loc().String(),
		Workdays: c.Workdays,
		Holidays: c.Holidays,
		SwapAt:   c.SwapAt,
	})
}

// UnmarshalJSON reads a calendar and loads its zone with time.LoadLocation;
// a program on a box without a zone database should import time/tzdata.
func (c *Calendar) UnmarshalJSON(b []byte) error {
	var v calendarJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("rotation: read calendar: %w", err)
	}
	loc, err := time.LoadLocation(v.Zone)
	if err != nil {
		return fmt.Errorf("rotation: read calendar zone %q: %w", v.Zone, err)
	}
	*c = Calendar{Location: loc, Workdays: v.Workdays, Holidays: v.Holidays, SwapAt: v.SwapAt}
	return nil
}
