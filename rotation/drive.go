package rotation

import "time"

// DriveID names an enrolled drive. The box makes it up at enrollment and
// writes it, signed with the box's key, onto the drive.
type DriveID string

// Identity is what a drive presents when it is plugged in: the identity file
// written at enrollment (ID and Signature) plus what the kernel and the
// filesystem say about it. A drive with no identity file has an empty ID.
type Identity struct {
	// ID is the drive's ID from its identity file; empty when it has none.
	ID DriveID `json:"id,omitempty"`
	// Signature is the box's signature over ID, FSUUID and Serial (over ID
	// alone for a drive enrolled before signatures covered the rest).
	Signature []byte `json:"signature,omitempty"`
	// FSUUID is the UUID of the backup filesystem on the drive.
	FSUUID string `json:"fs_uuid,omitempty"`
	// Serial is the drive's hardware serial; empty when the bridge hides it.
	Serial string `json:"serial,omitempty"`
}

// VerifyFunc reports whether id.Signature is this box's signature over the
// identity: its ID together with the filesystem UUID and serial it was
// enrolled with, so an identity file copied onto another drive fails.
type VerifyFunc func(id Identity) bool

// Status is where a drive is in the rotation.
type Status string

// The statuses of a drive.
const (
	InBox     Status = "in box"     // plugged into the box
	Offsite   Status = "offsite"    // away, not next to come back
	InTransit Status = "in transit" // away, and the next one due in the box
	Overdue   Status = "overdue"    // away for longer than Policy.OverdueAfter
	Lost      Status = "lost"       // reported lost by staff
	Failing   Status = "failing"    // reported failing (SMART); never written again
	Retired   Status = "retired"    // taken out of rotation; never written again
)

// active reports whether the drive still takes part in the rotation.
func (s Status) active() bool { return s != Lost && s != Failing && s != Retired }

// away reports whether the drive is in rotation but out of the box.
func (s Status) away() bool { return s == Offsite || s == InTransit || s == Overdue }

// Drive is one enrolled drive and what the box knows about it.
type Drive struct {
	Identity
	// Generation is the drive's place in the cycle, such as "Son".
	Generation string `json:"generation"`
	// Capacity is the drive's size in bytes; zero means unknown.
	Capacity int64 `json:"capacity,omitempty"`
	// Status is where the drive is.
	Status Status `json:"status"`
	// Detail says why the drive is failing, lost or retired; empty otherwise.
	Detail string `json:"detail,omitempty"`
	// EnrolledAt is when the drive joined the rotation.
	EnrolledAt time.Time `json:"enrolled_at"`
	// InsertedAt is when the drive was last put in the box; zero if never.
	InsertedAt time.Time `json:"inserted_at,omitzero"`
	// AwaySince is when the drive last left the box with a backup on it, or
	// its enrollment time if it has not been in the box since. The drive
	// away longest is the one expected next.
	AwaySince time.Time `json:"away_since"`
	// LastSeen is the last time the drive was put in or taken out.
	LastSeen time.Time `json:"last_seen"`
	// ReplacedBy is the successor enrolled for this drive's generation.
	ReplacedBy DriveID `json:"replaced_by,omitempty"`
}

// DefaultGenerations are the generation names used when Policy.Generations
// is empty.
var DefaultGenerations = []string{"Son", "Father", "Grandfather"}
