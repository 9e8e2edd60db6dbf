package status

// The words below are typed so that the appliance, the pages and the
// tools compare constants, not literals. Each is a string underneath, so
// the JSON of the status document and of the state files is unchanged.

// Activity is what the box is doing with the drive in it.
type Activity string

// Activities, in the order a drive usually meets them.
const (
	Identifying  Activity = "identifying"    // just plugged in: reading its identity and health
	BackingUp    Activity = "backing up"     // a base backup is being written
	Verifying    Activity = "verifying"      // the new backup is being checked
	Streaming    Activity = "streaming"      // WAL is streaming onto it
	Idle         Activity = "idle"           // writable, but nothing is running
	Ejecting     Activity = "ejecting"       // being flushed and powered down
	SafeToRemove Activity = "safe to remove" // ejected: it may be pulled
	NotWritten   Activity = "not written"    // the box does not write to this drive
)

// Activities lists every Activity, for tests that check a switch covers
// them all.
var Activities = []Activity{Identifying, BackingUp, Verifying, Streaming, Idle, Ejecting, SafeToRemove, NotWritten}

func (a Activity) String() string { return string(a) }

// Verdict is a drive's health in one word, as the status document says it.
type Verdict string

// Verdicts, from healthy to failing.
const (
	VerdictUnknown Verdict = "unknown" // the drive cannot be asked
	VerdictOK      Verdict = "ok"
	VerdictWarning Verdict = "warning" // wearing: plan to replace it
	VerdictFailing Verdict = "failing" // replace it now; never write to it again
)

// Verdicts lists every Verdict.
var Verdicts = []Verdict{VerdictUnknown, VerdictOK, VerdictWarning, VerdictFailing}

func (v Verdict) String() string { return string(v) }

// Verification is whether a base backup checked out.
type Verification string

// Verifications; a backup not checked yet has none ("").
const (
	NotVerified  Verification = ""
	VerifiedOK   Verification = "ok"
	VerifyFailed Verification = "failed"
)

// Verifications lists every Verification.
var Verifications = []Verification{NotVerified, VerifiedOK, VerifyFailed}

func (v Verification) String() string { return string(v) }
