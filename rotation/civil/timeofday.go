// Package civil is local wall-clock time without a date (box step of the
// data path, used by rotation, the appliance, alerts and maintenance): the
// time of the morning swap or the nightly backup, and nightly spans such as
// quiet hours.
package civil

import (
	"fmt"
	"time"
)

// TimeOfDay is a local wall-clock time such as the morning swap at 08:00. It
// reads and writes as "15:04" in JSON.
type TimeOfDay struct {
	Hour, Minute int
}

// ParseTimeOfDay reads a time written as "15:04".
func ParseTimeOfDay(s string) (TimeOfDay, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return TimeOfDay{}, fmt.Errorf("civil: parse time of day %q: want HH:MM: %w", s, err)
	}
	return TimeOfDay{t.Hour(), t.Minute()}, nil
}

// Validate says why t is not a time of day (00:00 to 23:59), or nil.
func (t TimeOfDay) Validate() error {
	if t.Hour < 0 || t.Hour > 23 || t.Minute < 0 || t.Minute > 59 {
		return fmt.Errorf("%02d:%02d is not a time of day (00:00 to 23:59)", t.Hour, t.Minute)
	}
	return nil
}

// String returns t as "15:04".
func (t TimeOfDay) String() string { return fmt.Sprintf("%02d:%02d", t.Hour, t.Minute) }

// MarshalText writes t as "15:04".
func (t TimeOfDay) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText reads a time written as "15:04".
func (t *TimeOfDay) UnmarshalText(b []byte) error {
	v, err := ParseTimeOfDay(string(b))
	*t = v
	return err
}

// minutes is t as minutes after midnight.
func (t TimeOfDay) minutes() int { return t.Hour*60 + t.Minute }

// Span is a nightly span of wall-clock time in the practice's time zone,
// such as quiet hours: End may be before Start (22:00 to 07:00 ends the
// next morning), and Start equal to End (the zero Span) means none.
type Span struct {
	Start TimeOfDay `json:"start"`
	End   TimeOfDay `json:"end"`
}

// Contains reports whether t's wall-clock time in loc falls in the span.
func (s Span) Contains(t time.Time, loc *time.Location) bool {
	if s.Start == s.End {
		return false
	}
	local := t.In(loc)
	m := local.Hour()*60 + local.Minute()
	start, end := s.Start.minutes(), s.End.minutes()
	if start < end {
		return m >= start && m < end
	}
	return m >= start || m < end // across midnight
}
