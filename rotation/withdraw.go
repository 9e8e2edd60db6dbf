package rotation

import (
	"fmt"
	"time"
)

// withdraw takes ev.Drive out of the rotation: retired for good, failing,
// or lost.
func (p *Policy) withdraw(s *State, ev Event, now time.Time) Decision {
	d, why := notRetired(s, ev.Drive)
	switch {
	case d == nil:
		return rejected("%s", why)
	case ev.Kind == Lose && s.InBox == d.ID:
		return rejected("%s is in the box, so it is not lost.", d.Generation)
	}
	detail := ev.Detail
	var dec Decision
	switch ev.Kind {
	case Retire:
		detail = retiredDetail(d, "retired", now, ev.Detail)
		dec = Decision{Kind: DriveRetired}.about(d).
			with(fmt.Sprintf("%s (%s) is retired and will never be written again. Give it to IT for secure erasure, and enroll a replacement so the rotation keeps its generations.", d.Generation, d.ID))
		d.Status = Retired
	case Fail:
		dec = Decision{Kind: DriveFailing}.about(d).
			with(fmt.Sprintf("%s is failing (%s): nothing more will be written to it.", d.Generation, orUnknown(detail))).
			with(fmt.Sprintf("Replace it: enroll a new drive as %s's replacement, and give this one to IT.", d.Generation))
		d.Status = Failing
	case Lose:
		detail = fmt.Sprintf("reported lost on %s", now.Format(time.DateOnly))
		if ev.Detail != "" {
			detail += "; " + ev.Detail
		}
		dec = Decision{Kind: DriveLost}.about(d).
			with(fmt.Sprintf("%s (%s) is recorded as lost. If it held backups, tell the practice's privacy officer; an encrypted drive is not a reportable breach.", d.Generation, d.ID)).
			with(fmt.Sprintf("Enroll a new drive as %s's replacement.", d.Generation))
		d.Status = Lost
	}
	d.Detail = detail
	return dec
}

// orUnknown returns s, or "reason unknown" when s is empty.
func orUnknown(s string) string {
	if s == "" {
		return "reason unknown"
	}
	return s
}

// notRetired returns the enrolled, not yet retired drive id, or nil and why
// there is none.
func notRetired(s *State, id DriveID) (*Drive, string) {
	d := s.drive(id)
	switch {
	case d == nil:
		return nil, fmt.Sprintf("There is no enrolled drive %q.", id)
	case d.Status == Retired:
		return nil, fmt.Sprintf("%s (%s) is already retired.", d.Generation, d.ID)
	}
	return d, ""
}
