package rotation

import (
	"fmt"
	"time"
)

// Date is a civil date with no time of day and no zone, such as a holiday.
// It reads and writes as "2006-01-02" in JSON.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// DateOf returns the date of t in t's own location.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date{y, m, d}
}

// ParseDate reads a date written as "2006-01-02".
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("rotation: parse date %q: want YYYY-MM-DD: %w", s, err)
	}
	return DateOf(t), nil
}

// noon is the date at midday UTC, a safe anchor for date arithmetic.
func (d Date) noon() time.Time { return time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, time.UTC) }

// AddDays returns the date n days later (earlier when n is negative).
func (d Date) AddDays(n int) Date { return DateOf(d.noon().AddDate(0, 0, n)) }

// Weekday returns the day of the week of d.
func (d Date) Weekday() time.Weekday { return d.noon().Weekday() }

// Before reports whether d comes before e.
func (d Date) Before(e Date) bool { return d.noon().Before(e.noon()) }

// String returns d as "2006-01-02".
func (d Date) String() string { return d.noon().Format(time.DateOnly) }

// MarshalText writes d as "2006-01-02".
func (d Date) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a date written as "2006-01-02".
func (d *Date) UnmarshalText(b []byte) error {
	v, err := ParseDate(string(b))
	*d = v
	return err
}
