package appliance

import (
	"cmp"
	"slices"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
)

// walClock dates stored WAL by its position, on the appliance's own
// clock. A segment file's modification time comes from the wall clock,
// which need not be the appliance's (the demo runs its clock 720 times
// faster; a test sets it): compared with backup times from the
// appliance's clock, WAL a kept backup needs could look older than it and
// be deleted. The known points are each backup's start (position and
// time, both recorded by the appliance) and what is flushed now; a
// position between two points gets the time in proportion between theirs.
type walClock struct {
	lsn []archive.LSN // ascending
	at  []time.Time   // never decreasing
}

func newWALClock(backups []*archive.Backup, flushed archive.LSN, now time.Time) walClock {
	type point struct {
		lsn archive.LSN
		at  time.Time
	}
	pts := []point{{flushed, now}}
	for _, b := range backups {
		pts = append(pts, point{b.StartLSN, b.Start})
	}
	slices.SortFunc(pts, func(a, b point) int {
		if a.lsn != b.lsn {
			return cmp.Compare(a.lsn, b.lsn)
		}
		return a.at.Compare(b.at)
	})
	var c walClock
	for _, p := range pts {
		if n := len(c.at); n > 0 && p.at.Before(c.at[n-1]) {
			p.at = c.at[n-1] // a clock set back: never date later WAL earlier
		}
		c.lsn, c.at = append(c.lsn, p.lsn), append(c.at, p.at)
	}
	return c
}

// time dates the WAL up to position end: before the first point, at the
// first point's time less a nanosecond (older than every backup); after
// the last, at the last point's time.
func (c walClock) time(end archive.LSN) time.Time {
	i, _ := slices.BinarySearch(c.lsn, end)
	switch {
	case i == 0 && end < c.lsn[0]:
		return c.at[0].Add(-time.Nanosecond)
	case i == len(c.lsn):
		return c.at[len(c.at)-1]
	case c.lsn[i] == end:
		return c.at[i]
	}
	lo, hi := c.lsn[i-1], c.lsn[i]
	span := c.at[i].Sub(c.at[i-1])
	return c.at[i-1].Add(time.Duration(float64(span) * float64(end-lo) / float64(hi-lo)))
}
