package rotation

import (
	"time"
)

// EventKind says what happened to the box or a drive.
type EventKind string

// The events the rotation understands.
const (
	Insert  EventKind = "insert"  // a drive was plugged in; Identity is what it presents
	Remove  EventKind = "remove"  // the drive in the box came out; Safe says whether it was ejected first
	Enroll  EventKind = "enroll"  // a new drive joins; Identity was just written to it
	Replace EventKind = "replace" // Drive is retired and Identity enrolled under its generation
	Retire  EventKind = "retire"  // Drive leaves the rotation for good
	Fail    EventKind = "failing" // Drive's health check says it is failing; Detail says why
	Lose    EventKind = "lost"    // staff report Drive lost
)

// Event is something that happened, as the appliance saw it.
type Event struct {
	Kind EventKind `json:"kind"`
	// Identity is what an inserted drive presents, or the identity just
	// written to a drive being enrolled or replacing another.
	Identity Identity `json:"identity,omitzero"`
	// Drive is the enrolled drive a Replace, Retire, Fail or Lose is about.
	Drive DriveID `json:"drive,omitempty"`
	// Generation is the name for an enrolled drive; empty means the next
	// free name from Policy.Generations.
	Generation string `json:"generation,omitempty"`
	// Capacity is an enrolled drive's size in bytes; zero means unknown.
	Capacity int64 `json:"capacity,omitempty"`
	// Safe reports, for Remove, whether the drive was ejected before it was
	// pulled out.
	Safe bool `json:"safe,omitempty"`
	// Who is the staff member responsible, when known.
	Who string `json:"who,omitempty"`
	// Detail is free text: why a drive is failing, lost or retired.
	Detail string `json:"detail,omitempty"`
}

// Kind is what the rotation decided, for machines; Decision.Reasons says
// the same for people.
type Kind string

// Decisions on a drive put in.
const (
	Accepted     Kind = "accepted"      // the right drive; it is written
	WrongDrive   Kind = "wrong drive"   // an enrolled drive out of turn; written only under the lenient policy
	UnknownDrive Kind = "unknown drive" // not enrolled; never written, may be enrolled
	ForeignDrive Kind = "foreign drive" // identity not signed by this box or not matching; never written
	Refused      Kind = "refused"       // failing, retired, or the box already holds a drive; never written
)

// Decisions on a drive taken out.
const (
	Ejected Kind = "ejected" // taken out after a safe eject
	Pulled  Kind = "pulled"  // pulled out without ejecting
)

// Decisions on changes to the set of drives.
const (
	Enrolled     Kind = "enrolled"
	Replaced     Kind = "replaced"
	DriveRetired Kind = "retired"
	DriveLost    Kind = "lost"
	Rejected     Kind = "rejected" // the event cannot apply; Reasons say why and the state is unchanged
)

// Conditions found by Evaluate as time passes.
const (
	Healthy      Kind = "healthy"
	SwapDue      Kind = "swap due"
	DriveOverdue Kind = "drive overdue"
	NoDrive      Kind = "no drive"
	DriveFailing Kind = "drive failing" // also the decision on a Fail event
	TooFewDrives Kind = "too few drives"
)

// Decision is the rotation's answer to an event or to the passing of time.
type Decision struct {
	Kind Kind `json:"kind"`
	// Drive is the drive the decision is about; empty for a stranger.
	Drive DriveID `json:"drive,omitempty"`
	// Generation is Drive's generation name.
	Generation string `json:"generation,omitempty"`
	// Write reports whether the appliance may write backups to the drive
	// now in the box.
	Write bool `json:"write"`
	// Enroll reports whether staff may be offered to enroll the drive in
	// the box.
	Enroll bool `json:"enroll,omitempty"`
	// Reasons say what happened and what to do, in plain words.
	Reasons []string `json:"reasons"`
	// Conditions are everything Evaluate found wrong, most severe first;
	// Kind is the first one's, or Healthy.
	Conditions []Condition `json:"conditions,omitempty"`
}

// Condition is one thing that needs attention, for the panel and alerts.
type Condition struct {
	Kind  Kind    `json:"kind"`
	Drive DriveID `json:"drive,omitempty"`
	// Since is when the condition began; it lets the appliance debounce
	// and escalate.
	Since time.Time `json:"since"`
	// Reason says what is wrong and what to do.
	Reason string `json:"reason"`
}
