package appliance

import (
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
)

// condKey names one condition: its name and the drive it concerns.
type condKey struct{ name, drive string }

func keyOf(c status.Condition) condKey { return condKey{c.Name, c.Drive} }

// onsets remembers when each condition now shown began and which of them
// someone acknowledged. A condition that clears and comes back is a new
// condition: it gets a new onset and sounds again, whatever was
// acknowledged before.
//
// A source that knows when its condition began (the rotation's "swap due
// since 08:00", the offsite link's last contact) passes that time as the
// condition's Since: a later Since than the one remembered is a new
// occurrence. A source that does not know (a check that runs every few
// minutes) passes zero, and the onset is when the box first saw it.
type onsets struct {
	since map[condKey]time.Time
	acked map[condKey]time.Time // onset that was acknowledged
}

func newOnsets() *onsets {
	return &onsets{since: map[condKey]time.Time{}, acked: map[condKey]time.Time{}}
}

// stamp sets each condition's Since to its onset and Acknowledged to
// whether that occurrence was acknowledged, and forgets conditions no
// longer shown (and their acknowledgements).
func (o *onsets) stamp(conds []status.Condition, now time.Time) {
	shown := make(map[condKey]bool, len(conds))
	for i := range conds {
		c := &conds[i]
		k := keyOf(*c)
		shown[k] = true
		at, ok := o.since[k]
		switch {
		case !ok && c.Since.IsZero():
			at = now
		case !ok || c.Since.After(at):
			at = c.Since
		}
		o.since[k] = at
		c.Since = at
		acked, ok := o.acked[k]
		c.Acknowledged = ok && acked.Equal(at)
	}
	for k := range o.since {
		if !shown[k] {
			delete(o.since, k)
			delete(o.acked, k)
		}
	}
}

// renew makes the next showing of the condition a new occurrence, for a
// source that knows its condition happened again (a second failed backup)
// although it may never have cleared in between.
func (o *onsets) renew(name, drive string) {
	k := condKey{name, drive}
	delete(o.since, k)
	delete(o.acked, k)
}

// ack acknowledges the occurrence of c now shown.
func (o *onsets) ack(c status.Condition) { o.acked[keyOf(c)] = c.Since }
