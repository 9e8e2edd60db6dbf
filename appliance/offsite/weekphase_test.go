package offsite_test

import (
	"cmp"
	"context"
	"time"

	"golang.org/x/time/rate"

	"github.com/clinicbox/clinicbox/appliance/offsite"
)

// The week's day and night (week_test.go): the box's uplink is slow in
// office hours and fast at night, and its cap for base uploads follows
// the hour of its clock (offsite.OfficeHours). The box process turns its
// clock on to the next 07:00 or 19:00, never back (the shipper paces WAL
// records by it), and sets the uplink's token bucket to match.

const officeFrom, officeTo = 7, 19

// weekBandwidth is the box's cap: by day c.CapBits, at night
// c.NightCapBits (the day's without it); none without c.CapBits.
func weekBandwidth(c weekBoxCmd) offsite.Bandwidth {
	if c.CapBits <= 0 {
		return offsite.Bandwidth{}
	}
	return offsite.OfficeHours(officeFrom, officeTo, c.CapBits, cmp.Or(c.NightCapBits, c.CapBits))
}

// toDay turns the box to office hours on the day link.
func (b *weekBoxProc) toDay() { b.turn(officeFrom, b.dayBps) }

// toNight turns the box to the night on the night link.
func (b *weekBoxProc) toNight() { b.turn(officeTo, b.nightBps) }

// turn moves the box's clock on to the next h:00, unless it already is
// on that side of office hours, and sets the uplink to bps bytes/s.
func (b *weekBoxProc) turn(h, bps int) {
	now := b.clock.Now()
	if inOffice(now.Hour()) != inOffice(h) {
		next := time.Date(now.Year(), now.Month(), now.Day(), h, 0, 0, 0, now.Location())
		if !next.After(now) {
			next = next.AddDate(0, 0, 1)
		}
		b.clock.add(next.Sub(now))
	}
	b.lim.SetLimit(rate.Limit(bps))
}

func inOffice(h int) bool { return h >= officeFrom && h < officeTo }

// upload uploads a backup. With c.DayBytes it starts in office hours on
// the day link and turns to the night once the uplink has carried
// c.DayBytes more (or the upload ended), telling the test when.
func (b *weekBoxProc) upload(c weekBoxCmd) error {
	if c.DayBytes <= 0 {
		return b.sh.UploadBackup(context.Background(), c.Drive, c.BackupID)
	}
	b.toDay()
	done, turned := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(turned)
		b.nightAfter(b.wire.Load()+c.DayBytes, done)
	}()
	err := b.sh.UploadBackup(context.Background(), c.Drive, c.BackupID)
	close(done)
	<-turned
	return err
}

// nightAfter turns the box to the night once the uplink's byte count
// reaches at, or when done closes, and tells the test the time.
func (b *weekBoxProc) nightAfter(at int64, done <-chan struct{}) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for b.wire.Load() < at {
		select {
		case <-done:
			at = 0
		case <-tick.C:
		}
	}
	b.toNight()
	b.say(weekBoxMsg{Night: time.Now()})
}
