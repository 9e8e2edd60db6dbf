package web

import (
	"time"

	"github.com/clinicbox/clinicbox/rotation"
)

// calendar is a month of the rotation as a grid of weeks from Monday:
// the days drives went in or came out, today, and the day the swap is due.
type calendar struct {
	Title string
	Weeks [][]calDay
}

type calDay struct {
	// Day is the day of the month; 0 for padding outside the month.
	Day   int
	Today bool
	Due   bool
	Moves []calMove
}

// calMove is one drive movement on a calendar day.
type calMove struct {
	Generation string
	Event      string
	Decision   string
	// Wrong marks a movement the box did not want: a wrong drive, a
	// drive pulled without ejecting, a refusal.
	Wrong bool
}

// fine are the decisions on a movement that needs no comment.
var fine = map[rotation.Kind]bool{rotation.Accepted: true, rotation.Ejected: true}

// monthCalendar lays out the month of now in loc.
func monthCalendar(entries []rotation.Entry, dueAt, now time.Time, loc *time.Location) calendar {
	now = now.In(loc)
	first := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, loc)
	days := first.AddDate(0, 1, -1).Day()
	moves := map[int][]calMove{}
	for _, e := range entries {
		t := e.Time.In(loc)
		if t.Year() != now.Year() || t.Month() != now.Month() || (e.Event != string(rotation.Insert) && e.Event != string(rotation.Remove)) {
			continue
		}
		moves[t.Day()] = append(moves[t.Day()], calMove{Generation: e.Generation, Event: e.Event, Decision: string(e.Decision), Wrong: !fine[e.Decision]})
	}
	due := 0
	if d := dueAt.In(loc); !dueAt.IsZero() && d.Year() == now.Year() && d.Month() == now.Month() {
		due = d.Day()
	}
	c := calendar{Title: now.Format("January 2006")}
	lead := (int(first.Weekday()) + 6) % 7 // days before the 1st in a Monday week
	week := make([]calDay, lead)
	for d := 1; d <= days; d++ {
		week = append(week, calDay{Day: d, Today: d == now.Day(), Due: d == due, Moves: moves[d]})
		if len(week) == 7 {
			c.Weeks = append(c.Weeks, week)
			week = nil
		}
	}
	if len(week) > 0 {
		c.Weeks = append(c.Weeks, append(week, make([]calDay, 7-len(week))...))
	}
	return c
}
