package testenv

import (
	"testing"
	"time"
)

type deadlined struct {
	testing.TB
	end time.Time
	set bool
}

func (d deadlined) Deadline() (time.Time, bool) { return d.end, d.set }

func TestPatience(t *testing.T) {
	for _, c := range []struct {
		name     string
		tb       testing.TB
		min, max time.Duration
	}{
		{"a deadline an hour away", deadlined{TB: t, end: time.Now().Add(time.Hour), set: true}, 58 * time.Minute, 59 * time.Minute},
		{"a deadline about to pass", deadlined{TB: t, end: time.Now().Add(10 * time.Second), set: true}, time.Minute, time.Minute},
		{"no deadline", deadlined{TB: t}, 10 * time.Minute, 10 * time.Minute},
	} {
		if got := Patience(c.tb); got < c.min || got > c.max {
			t.Errorf("%s: Patience = %s; want between %s and %s", c.name, got, c.min, c.max)
		}
	}
}
