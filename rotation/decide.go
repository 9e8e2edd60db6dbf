// Package rotation is the pure logic of the clinic's drive rotation (box
// step of the data path): which backup drive belongs in the box, when it is
// due to be swapped, what is overdue or lost, what to delete to make room,
// and the custody log that records every movement of media.
//
// Nothing here does I/O, talks to a driver or reads the clock: the appliance
// passes the state, the event and the current time in, and gets back the new
// state and a Decision whose Reasons are written for front-desk staff:
//
//	st, d := policy.Decide(st, rotation.Event{Kind: rotation.Insert, Identity: id}, now)
//	st, d = policy.Evaluate(st, now)
//
// State, Policy and custody entries serialize to JSON so that the appliance
// can persist them.
package rotation

import (
	"fmt"
	"time"
)

// Decide applies ev, which happened at now, to s and returns the new state
// and the decision with its reasons. It does not modify s. An event that
// cannot apply returns s unchanged and a Rejected decision saying why.
func (p *Policy) Decide(s State, ev Event, now time.Time) (State, Decision) {
	next := s.clone()
	var d Decision
	switch ev.Kind {
	case Insert:
		d = p.insert(&next, ev, now)
	case Remove:
		d = p.remove(&next, ev, now)
	case Enroll:
		d = p.enroll(&next, ev, now)
	case Replace:
		d = p.replace(&next, ev, now)
	case Retire, Fail, Lose:
		d = p.withdraw(&next, ev, now)
	default:
		d = rejected("The box does not know the event %q.", ev.Kind)
	}
	if d.Kind == Rejected {
		return s, d
	}
	next.relabel()
	return next, d
}

// rejected returns a Rejected decision with one reason.
func rejected(format string, args ...any) Decision {
	return Decision{Kind: Rejected, Reasons: []string{fmt.Sprintf(format, args...)}}
}

// about fills in the decision's drive fields from d.
func (dec Decision) about(d *Drive) Decision {
	if d != nil {
		dec.Drive, dec.Generation = d.ID, d.Generation
	}
	return dec
}

// day formats t as a local date for staff, such as "Mon 2 Jun".
func (p *Policy) day(t time.Time) string {
	return t.In(p.Calendar.loc()).Format("Mon 2 Jan")
}

// clock formats t as a local date and time for staff, such as
// "Mon 2 Jun 08:00".
func (p *Policy) clock(t time.Time) string {
	return t.In(p.Calendar.loc()).Format("Mon 2 Jan 15:04")
}

// plural returns "1 business day" or "3 business days".
func plural(n int, unit string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", unit)
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
