package rotation

import (
	"fmt"
	"slices"
	"time"
)

// severity orders conditions, most severe first.
var severity = []Kind{DriveFailing, NoDrive, ForeignDrive, UnknownDrive, Refused, DriveOverdue, WrongDrive, SwapDue, TooFewDrives}

// Evaluate looks at s as time passes and reports what needs attention at
// now: a swap that is due, a drive away too long, an empty box, a failing
// or wrong drive in the box, too few drives. It returns s with overdue
// drives marked, and a decision whose Kind is the most severe condition, or
// Healthy. It does not modify s.
func (p *Policy) Evaluate(s State, now time.Time) (State, Decision) {
	next := s.clone()
	var conds []Condition
	conds = append(conds, p.boxConditions(&next, now)...)
	conds = append(conds, p.overdue(&next, now)...)
	if n := len(next.Active()); n < 2 {
		reason := "Only 1 drive is in the rotation: enroll at least one more, so that one copy of the backups is always away from the office."
		if n == 0 {
			reason = "No drive is in the rotation yet: plug in a new drive and choose Enroll on the box's page; enroll at least two, so that one copy of the backups is always away from the office."
		}
		conds = append(conds, Condition{Kind: TooFewDrives, Reason: reason})
	}
	next.relabel()
	slices.SortStableFunc(conds, func(a, b Condition) int {
		return slices.Index(severity, a.Kind) - slices.Index(severity, b.Kind)
	})
	dec := Decision{Kind: Healthy, Conditions: conds, Write: p.writable(&next)}.about(next.drive(next.InBox))
	for _, c := range conds {
		dec.Reasons = append(dec.Reasons, c.Reason)
	}
	if len(conds) == 0 {
		dec.Reasons = []string{p.healthy(&next)}
	} else {
		dec.Kind = conds[0].Kind
	}
	return next, dec
}

// writable reports whether backups may go to the drive in the box.
func (p *Policy) writable(s *State) bool {
	d := s.drive(s.InBox)
	return d != nil && d.Status == InBox && (s.Placed == Accepted || (s.Placed == WrongDrive && !p.Strict))
}

// boxConditions reports what is wrong with the box's slot.
func (p *Policy) boxConditions(s *State, now time.Time) []Condition {
	if st := s.Stranger; st != nil {
		what := "take it out."
		if s.StrangerKind == UnknownDrive {
			// A new drive plugged in to be enrolled is one of these too.
			what = "to add it, choose Enroll on the box's page; otherwise take it out."
		}
		return []Condition{{Kind: s.StrangerKind, Since: s.EmptySince, Reason: "The drive in the box is not part of the rotation and is not being written: " + what + p.nextHint(s)}}
	}
	d := s.drive(s.InBox)
	if d == nil {
		hint := p.nextHint(s)
		if out := s.drive(s.LastOut); out != nil && p.reseated(s, out, now) {
			hint = fmt.Sprintf(" Put %s back in: it came out before its swap was due.", out.Generation)
		}
		return []Condition{{Kind: NoDrive, Since: s.EmptySince, Reason: "There is no drive in the box, so tonight's backup has nowhere to go." + hint}}
	}
	if d.Status == Failing || d.Status == Retired {
		return []Condition{{Kind: DriveFailing, Drive: d.ID, Since: d.LastSeen, Reason: fmt.Sprintf(
			"%s in the box is %s (%s) and is not being written: eject it, and enroll a replacement.", d.Generation, d.Status, orUnknown(d.Detail))}}
	}
	var out []Condition
	if s.Placed == WrongDrive {
		c := Condition{Kind: WrongDrive, Drive: d.ID, Since: d.InsertedAt}
		if want := s.drive(s.Expected); want != nil && want.Status.away() {
			verb := "is being backed up anyway"
			if p.Strict {
				verb = "is not being written"
			}
			c.Reason = fmt.Sprintf("%s is in the box out of turn and %s: swap it for %s.", d.Generation, verb, want.Generation)
			out = append(out, c)
		}
	}
	if due := p.Calendar.SwapDueAt(d.InsertedAt); !now.Before(due) && len(s.Active()) > 1 {
		late := p.Calendar.SwapsBetween(due, now)
		r := fmt.Sprintf("Swap due: %s has been in the box since %s.%s", d.Generation, p.day(d.InsertedAt), p.nextHint(s))
		if late > 0 {
			r += fmt.Sprintf(" The swap is %s late.", plural(late, "business day"))
		}
		out = append(out, Condition{Kind: SwapDue, Drive: d.ID, Since: due, Reason: r})
	}
	return out
}

// overdue marks and reports drives away longer than the policy allows.
func (p *Policy) overdue(s *State, now time.Time) []Condition {
	var out []Condition
	limit := p.overdueAfter()
	for i := range s.Drives {
		d := &s.Drives[i]
		if !d.Status.away() {
			continue
		}
		n := p.Calendar.SwapsBetween(d.LastSeen, now)
		if n <= limit {
			continue
		}
		d.Status = Overdue
		out = append(out, Condition{Kind: DriveOverdue, Drive: d.ID, Since: d.LastSeen, Reason: fmt.Sprintf(
			"%s has not been seen for %s (since %s): bring it in, or report it lost if nobody can find it.", d.Generation, plural(n, "business day"), p.day(d.LastSeen))})
	}
	return out
}

// healthy describes a rotation with nothing to fix.
func (p *Policy) healthy(s *State) string {
	d := s.drive(s.InBox)
	r := fmt.Sprintf("Rotation healthy: %s is in the box until %s.", d.Generation, p.clock(p.Calendar.SwapDueAt(d.InsertedAt)))
	if want := s.expected(); want != nil {
		r += fmt.Sprintf(" %s goes in next.", want.Generation)
	}
	return r
}
