package rotation

import (
	"fmt"
	"time"
)

// remove records the drive in the box coming out.
func (p *Policy) remove(s *State, ev Event, now time.Time) Decision {
	kind, how := Pulled, "was pulled out without being ejected first: if a backup was running, the copy on this drive may be incomplete. Next time, press eject and wait for the light before pulling it out."
	if ev.Safe {
		kind, how = Ejected, "was ejected safely."
	}
	if s.Stranger != nil {
		dec := Decision{Kind: kind}.with("The drive that is not part of the rotation " + how)
		if d := s.drive(s.Stranger.ID); d != nil && s.StrangerKind == Refused {
			dec = Decision{Kind: kind}.about(d).with(fmt.Sprintf("%s (%s, %s) %s", d.Generation, d.ID, d.Status, how))
			d.LastSeen = now
		}
		s.Stranger, s.StrangerKind, s.EmptySince = nil, "", now
		return dec
	}
	d := s.drive(s.InBox)
	if d == nil {
		return rejected("No drive was recorded in the box, so there is nothing to take out.")
	}
	dec := Decision{Kind: kind}.about(d).with(fmt.Sprintf("%s %s", d.Generation, how))
	written := s.Placed == Accepted || (s.Placed == WrongDrive && !p.Strict)
	if written && d.Status == InBox {
		d.AwaySince = now
	}
	due, early := p.EarlyOut(*s, now)
	if d.Status == InBox {
		d.Status = Offsite
	}
	d.LastSeen, s.LastOut, s.InBox, s.EmptySince = now, d.ID, "", now
	switch {
	case !d.Status.active():
		dec = dec.with(fmt.Sprintf("%s is %s: give it to IT.%s", d.Generation, d.Status, p.nextHint(s)))
	case early:
		dec = dec.with(fmt.Sprintf("%s came out before its swap was due (%s): if that was a mistake, put it back in.", d.Generation, due))
	case written:
		dec = dec.with(fmt.Sprintf("Take %s offsite.%s", d.Generation, p.nextHint(s)))
	default:
		dec = dec.with("It was not being written, so the rotation is unchanged." + p.nextHint(s))
	}
	return dec
}

// EarlyOut reports whether taking the drive in the box out at now would be
// before its swap is due, and when the swap is due (for staff): the box
// then asks for it back, so whatever tells staff to take it out must say
// so too.
func (p *Policy) EarlyOut(s State, now time.Time) (due string, early bool) {
	d := s.drive(s.InBox)
	if d == nil || !d.Status.active() || s.Placed != Accepted {
		return "", false
	}
	at := p.Calendar.SwapDueAt(d.InsertedAt)
	return p.clock(at), now.Before(at)
}

// nextHint says which drive goes in next, or nothing when none is away.
func (p *Policy) nextHint(s *State) string {
	want := s.expected()
	if want == nil {
		return ""
	}
	return fmt.Sprintf(" Put in %s: it has been away longest (since %s).", want.Generation, p.day(want.AwaySince))
}
