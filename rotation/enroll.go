package rotation

import (
	"fmt"
	"slices"
	"time"
)

// enroll adds a new drive to the rotation under ev.Generation or the next
// free generation name.
func (p *Policy) enroll(s *State, ev Event, now time.Time) Decision {
	gen := ev.Generation
	if gen == "" {
		gen = p.freeGeneration(s)
	}
	if why := p.cannotEnroll(s, ev.Identity, gen); why != "" {
		return rejected("%s", why)
	}
	d := p.add(s, ev, gen, now)
	return Decision{Kind: Enrolled, Write: d.Status == InBox}.about(d).
		with(fmt.Sprintf("Drive %s joined the rotation as %s%s.", d.ID, gen, p.where(d)))
}

// replace retires ev.Drive and enrolls ev.Identity under its generation.
func (p *Policy) replace(s *State, ev Event, now time.Time) Decision {
	old, why := notRetired(s, ev.Drive)
	switch {
	case old == nil:
		return rejected("%s", why)
	case s.InBox == old.ID:
		return rejected("%s is in the box: eject it before replacing it.", old.Generation)
	}
	gen, oldID := old.Generation, old.ID
	if why := p.cannotEnroll(s, ev.Identity, ""); why != "" {
		return rejected("%s", why)
	}
	old.Status, old.Detail = Retired, retiredDetail(old, "replaced", now, ev.Detail)
	d := p.add(s, ev, gen, now)
	s.drive(oldID).ReplacedBy = d.ID
	return Decision{Kind: Replaced, Write: d.Status == InBox}.about(d).
		with(fmt.Sprintf("Drive %s replaces %s (%s), which is retired: give the old drive to IT for secure erasure.", d.ID, gen, oldID)).
		with(fmt.Sprintf("Drive %s is now %s%s.", d.ID, gen, p.where(d)))
}

// retiredDetail says when and why a drive was retired, keeping an earlier
// detail such as the failure that led to it.
func retiredDetail(d *Drive, verb string, now time.Time, detail string) string {
	s := fmt.Sprintf("%s on %s", verb, now.Format(time.DateOnly))
	for _, extra := range []string{d.Detail, detail} {
		if extra != "" {
			s += "; " + extra
		}
	}
	return s
}

// cannotEnroll says why id cannot join the rotation as gen, or returns "".
// gen is empty when the caller checked it already.
func (p *Policy) cannotEnroll(s *State, id Identity, gen string) string {
	if err := id.Check(); err != nil {
		return fmt.Sprintf("The new drive cannot be enrolled: %v.", err)
	}
	if err := CheckGeneration(gen); err != nil {
		return fmt.Sprintf("That generation cannot be used: %v; choose a short name of letters and digits.", err)
	}
	switch {
	case id.ID == "":
		return "The new drive has no identity: the box must write one before enrolling it."
	case !p.verified(id):
		return fmt.Sprintf("The identity of drive %s is not signed by this box's key, so it cannot be enrolled.", id.ID)
	case s.drive(id.ID) != nil:
		return fmt.Sprintf("Drive %s is already enrolled.", id.ID)
	}
	for _, d := range s.Drives {
		if d.Status != Retired && d.FSUUID != "" && d.FSUUID == id.FSUUID {
			return fmt.Sprintf("The new drive has the same filesystem as %s (%s): it may be a copy. Erase it first.", d.Generation, d.ID)
		}
		if gen != "" && d.Status != Retired && d.Generation == gen {
			return fmt.Sprintf("%s already has a drive (%s): replace that drive, or choose another generation name.", gen, d.ID)
		}
	}
	return ""
}

// freeGeneration returns the first configured name no drive holds, or
// "Drive N" when all are taken.
func (p *Policy) freeGeneration(s *State) string {
	taken := func(g string) bool {
		return slices.ContainsFunc(s.Drives, func(d Drive) bool { return d.Status != Retired && d.Generation == g })
	}
	for _, g := range p.generations() {
		if !taken(g) {
			return g
		}
	}
	for n := len(s.Drives) + 1; ; n++ {
		if g := fmt.Sprintf("Drive %d", n); !taken(g) {
			return g
		}
	}
}

// add appends the new drive. If it is the stranger in the box, it goes in
// the box and is written; otherwise it waits at the end of the queue.
func (p *Policy) add(s *State, ev Event, gen string, now time.Time) *Drive {
	s.Drives = append(s.Drives, Drive{
		Identity: ev.Identity, Generation: gen, Capacity: ev.Capacity,
		Status: Offsite, EnrolledAt: now, AwaySince: now, LastSeen: now,
	})
	d := &s.Drives[len(s.Drives)-1]
	if st := s.Stranger; st != nil && s.StrangerKind == UnknownDrive && st.FSUUID != "" && st.FSUUID == d.FSUUID {
		s.Stranger, s.StrangerKind = nil, ""
		s.InBox, s.Placed, s.Expected = d.ID, Accepted, ""
		d.Status, d.InsertedAt = InBox, now
	}
	return d
}

// where says where a newly enrolled drive is.
func (p *Policy) where(d *Drive) string {
	if d.Status == InBox {
		return "; it is in the box and will be backed up tonight"
	}
	return "; it joins the end of the queue and goes in after the drives now away"
}
