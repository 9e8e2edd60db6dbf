package rotation

import (
	"fmt"
	"time"
)

// insert decides on a drive put into the box.
func (p *Policy) insert(s *State, ev Event, now time.Time) Decision {
	if occupied := p.occupant(s); occupied != "" {
		return Decision{Kind: Refused, Reasons: []string{
			occupied + " is already in the box, and the box writes to one drive at a time.",
			"Nothing will be written to the drive just put in: take one of them out.",
		}}
	}
	id := ev.Identity
	if err := id.Check(); err != nil {
		return stranger(s, Identity{}, ForeignDrive, false,
			fmt.Sprintf("This drive's identity is not one a clinicbox writes (%v), so nothing will be written to it.", err),
			"Take it out and give it to IT; it must be erased before it can be enrolled here.")
	}
	d := s.drive(id.ID)
	switch {
	case id.ID == "":
		return stranger(s, id, UnknownDrive, true,
			"This drive is not enrolled in the rotation, so nothing will be written to it.",
			"To add it to the rotation, choose Enroll on the box's page; otherwise take it out.")
	case !p.verified(id):
		return stranger(s, id, ForeignDrive, false,
			"This drive carries the identity of another backup box, not this one, so nothing will be written to it.",
			"Take it out and return it to its owner; IT must erase it before it can be enrolled here.")
	case d == nil:
		return stranger(s, id, UnknownDrive, true,
			"This drive was enrolled by this box but is missing from its records (perhaps the records were restored from an older copy), so nothing will be written to it.",
			"Choose Enroll on the box's page to take it back into the rotation.")
	case mismatch(d.FSUUID, id.FSUUID) || mismatch(d.Serial, id.Serial):
		return stranger(s, id, ForeignDrive, false,
			fmt.Sprintf("This drive carries %s's identity, but it is not the drive enrolled as %s (its filesystem or serial number differs): it may be a copy.", d.Generation, d.Generation),
			"Nothing will be written to it. Take it out and call IT.")
	case d.Status == Retired || d.Status == Failing:
		return stranger(s, id, Refused, false,
			fmt.Sprintf("%s (%s) is %s: %s. Nothing will be written to it.", d.Generation, d.ID, d.Status, orUnknown(d.Detail)),
			"Take it out and give it to IT for secure erasure; use the drive that replaced it.").about(d)
	}
	return p.place(s, d, now)
}

// place puts the enrolled drive d into the box and decides whether it is the
// right one.
func (p *Policy) place(s *State, d *Drive, now time.Time) Decision {
	var found []string
	if d.Status == Lost {
		found = []string{fmt.Sprintf("%s was reported lost and has been found: it is back in the rotation.", d.Generation)}
		d.Status, d.Detail = Offsite, ""
	}
	want := s.expected()
	reseat := p.reseated(s, d, now)
	dec := Decision{Kind: Accepted, Write: true}.about(d)
	switch {
	case want == nil:
		dec.Reasons = []string{fmt.Sprintf("%s is the only drive in the rotation: it will be backed up.", d.Generation)}
	case want == d:
		dec.Reasons = []string{fmt.Sprintf("%s is the right drive: it has been away longest (since %s). It will be backed up tonight.", d.Generation, p.day(d.AwaySince))}
	case reseat:
		dec.Reasons = []string{fmt.Sprintf("%s is back in the box: it came out before its swap was due, so it stays in until %s.", d.Generation, p.clock(p.Calendar.SwapDueAt(d.InsertedAt)))}
	default:
		dec = p.wrong(d, want, s.LastOut == d.ID)
	}
	dec.Reasons = append(found, dec.Reasons...)
	s.InBox, s.Placed, s.Expected = d.ID, dec.Kind, ""
	if dec.Kind == WrongDrive {
		s.Expected = want.ID
	}
	if !reseat {
		d.InsertedAt = now
	}
	d.Status, d.LastSeen = InBox, now
	s.EmptySince = time.Time{}
	return dec
}

// reseated reports whether d is the accepted drive that came out before its
// swap was due and goes back in before then: pulled by mistake, not swapped.
func (p *Policy) reseated(s *State, d *Drive, now time.Time) bool {
	if d.ID != s.LastOut || s.Placed != Accepted || d.InsertedAt.IsZero() {
		return false
	}
	due := p.Calendar.SwapDueAt(d.InsertedAt)
	return d.LastSeen.Before(due) && now.Before(due)
}

// wrong explains that d went in instead of want.
func (p *Policy) wrong(d, want *Drive, justOut bool) Decision {
	dec := Decision{Kind: WrongDrive, Write: !p.Strict}.about(d)
	if justOut {
		dec.Reasons = append(dec.Reasons, fmt.Sprintf("This is %s, the drive that just came out: it should go offsite now.", d.Generation))
	} else {
		dec.Reasons = append(dec.Reasons, fmt.Sprintf("This is %s, but %s should go in next: it has been away longest (since %s).", d.Generation, want.Generation, p.day(want.AwaySince)))
	}
	if p.Strict {
		return dec.with(fmt.Sprintf("Nothing will be written to %s. Take it out and put in %s.", d.Generation, want.Generation))
	}
	return dec.with(fmt.Sprintf("%s will still be backed up tonight, so no backup is missed, but the rotation is out of order: put in %s instead as soon as you can.", d.Generation, want.Generation))
}

// with returns dec with one more reason.
func (dec Decision) with(reason string) Decision {
	dec.Reasons = append(dec.Reasons, reason)
	return dec
}

// stranger records an unknown or foreign drive in the box.
func stranger(s *State, id Identity, kind Kind, enroll bool, reasons ...string) Decision {
	s.Stranger, s.StrangerKind = &id, kind
	return Decision{Kind: kind, Enroll: enroll, Reasons: reasons}
}

// occupant names what is already in the box, or returns "".
func (p *Policy) occupant(s *State) string {
	if d := s.drive(s.InBox); d != nil {
		return d.Generation
	}
	if s.Stranger != nil {
		return "Another drive"
	}
	return ""
}

// mismatch reports whether two identity facts are both known and differ.
func mismatch(enrolled, seen string) bool {
	return enrolled != "" && seen != "" && enrolled != seen
}
