package rotation

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// State is everything the rotation remembers between events. The appliance
// persists it as JSON; Decide and Evaluate never modify the State they are
// given but return a new one.
type State struct {
	// Drives are all drives ever enrolled, retired ones included, in order
	// of enrollment.
	Drives []Drive `json:"drives"`
	// InBox is the enrolled drive plugged into the box; empty when none is.
	InBox DriveID `json:"in_box,omitempty"`
	// Placed is the insert decision for the drive in the box: Accepted or
	// WrongDrive. It decides whether the drive is written.
	Placed Kind `json:"placed,omitempty"`
	// Expected is the drive that should have gone in when a wrong drive was
	// put in; empty otherwise.
	Expected DriveID `json:"expected,omitempty"`
	// Stranger is what a drive in the box that is never written presents:
	// an unknown or foreign drive, or a failing or retired one. It is nil
	// when there is none.
	Stranger *Identity `json:"stranger,omitempty"`
	// StrangerKind says why Stranger is not written: UnknownDrive (it may
	// be enrolled), ForeignDrive or Refused.
	StrangerKind Kind `json:"stranger_kind,omitempty"`
	// LastOut is the drive that came out of the box most recently.
	LastOut DriveID `json:"last_out,omitempty"`
	// EmptySince is when the box was last left without a drive.
	EmptySince time.Time `json:"empty_since,omitzero"`
}

// clone returns a copy of s that shares no memory with it.
func (s State) clone() State {
	s.Drives = slices.Clone(s.Drives)
	if s.Stranger != nil {
		st := *s.Stranger
		s.Stranger = &st
	}
	return s
}

// drive returns the drive with the given ID, or nil.
func (s *State) drive(id DriveID) *Drive {
	for i := range s.Drives {
		if s.Drives[i].ID == id && id != "" {
			return &s.Drives[i]
		}
	}
	return nil
}

// Drive returns a copy of the drive with the given ID and whether it exists.
func (s State) Drive(id DriveID) (Drive, bool) {
	if d := s.drive(id); d != nil {
		return *d, true
	}
	return Drive{}, false
}

// Active returns the drives that take part in the rotation (not lost,
// failing or retired), in order of enrollment.
func (s State) Active() []Drive {
	var out []Drive
	for _, d := range s.Drives {
		if d.Status.active() {
			out = append(out, d)
		}
	}
	return out
}

// expected returns the drive that should go into the box next: of the
// drives in rotation and out of the box, the one away longest. It returns
// nil when there is none.
func (s *State) expected() *Drive {
	var best *Drive
	for i := range s.Drives {
		d := &s.Drives[i]
		if d.Status.away() && (best == nil || d.AwaySince.Before(best.AwaySince)) {
			best = d
		}
	}
	return best
}

// ExpectedNext returns the drive that should go into the box next and whether
// there is one.
func (s State) ExpectedNext() (Drive, bool) {
	if d := s.expected(); d != nil {
		return *d, true
	}
	return Drive{}, false
}

// relabel marks the drive away longest as in transit and the others away as
// offsite, leaving overdue drives overdue.
func (s *State) relabel() {
	next := s.expected()
	for i := range s.Drives {
		d := &s.Drives[i]
		switch {
		case d.Status == Overdue:
		case d.Status.away() && d == next:
			d.Status = InTransit
		case d.Status.away():
			d.Status = Offsite
		}
	}
}

// MarshalState writes s as indented JSON.
func MarshalState(s State) ([]byte, error) {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("rotation: marshal state: %w", err)
	}
	return b, nil
}

// UnmarshalState reads a State written by MarshalState, rejecting unknown
// fields.
func UnmarshalState(b []byte) (State, error) {
	var s State
	if err := strictUnmarshal(b, &s); err != nil {
		return State{}, fmt.Errorf("rotation: read state: %w", err)
	}
	return s, nil
}
