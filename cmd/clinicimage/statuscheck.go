package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/drivers/postgres"
)

// What the smoke looks for in the box's status document
// (appliance/status). Each check returns nil when the document shows what
// it wants, or says what it shows instead; a failNow error means waiting
// longer cannot help.

// failNow marks an error that ends a step's polling at once.
type failNow struct{ error }

func (e failNow) Unwrap() error { return e.error }

// errNoBox says the status shows no drive in the box.
var errNoBox = errors.New("no drive in the box")

// isFailNow reports whether err says to stop waiting.
func isFailNow(err error) bool { return errors.As(err, new(failNow)) }

// boxReady checks that the box trusts its clock, has usable settings and
// reaches the database.
func boxReady(st *status.Status) error {
	switch {
	case !st.Box.ClockTrusted:
		return errors.New("the box does not trust its clock yet")
	case st.Box.Setup != "ok":
		return fmt.Errorf("the box's setup: %s", st.Box.Setup)
	case !st.Database.Reachable:
		return fmt.Errorf("the box does not reach the database %s: %s", st.Database.Target, st.Database.LastError)
	}
	return nil
}

// offeredForEnrollment checks that the drive in the box is unknown: not
// written, and named in an "unknown drive" condition that says so.
func offeredForEnrollment(st *status.Status) error {
	b := st.InBox
	switch {
	case b == nil:
		return errNoBox
	case b.Decision != "unknown drive":
		return fmt.Errorf("the drive in the box is %q (%s); want an unknown drive", b.Decision, b.Activity)
	case b.Writable || b.Activity != status.NotWritten:
		return failNowf("an unknown drive is writable %v, %q; want not written", b.Writable, b.Activity)
	case !slices.ContainsFunc(st.Conditions, func(c status.Condition) bool { return c.Name == "unknown drive" }):
		return fmt.Errorf("no \"unknown drive\" condition yet (headline %q)", st.Headline)
	}
	return nil
}

// enrolledInBox returns the ID of the drive in the box when it is
// enrolled as generation gen and written.
func enrolledInBox(st *status.Status, gen string) (string, error) {
	b := st.InBox
	switch {
	case b == nil:
		return "", failNow{errNoBox}
	case b.Generation != gen || b.Drive == "":
		return "", fmt.Errorf("the drive in the box is %q %q (%s); want %s", b.Drive, b.Generation, b.Decision, gen)
	case !b.Writable:
		return "", fmt.Errorf("%s is not written (%s, %s)", gen, b.Decision, b.Activity)
	}
	return b.Drive, nil
}

// verifiedBackup returns the newest backup on drive once it is verified.
// A failed one fails at once.
func verifiedBackup(st *status.Status, drive string) (*status.Backup, error) {
	var last *status.Backup
	for i := range st.Backups {
		if b := &st.Backups[i]; b.Drive == drive && (last == nil || b.Start.After(last.Start)) {
			last = b
		}
	}
	var activity status.Activity
	if st.InBox != nil {
		activity = st.InBox.Activity
	}
	switch {
	case last == nil:
		return nil, fmt.Errorf("no backup on %s yet (%s)", drive, activity)
	case last.Verified == status.VerifyFailed:
		return nil, failNowf("backup %s on %s failed verification: %s", last.ID, drive, strings.Join(last.Problems, "; "))
	case last.Verified != status.VerifiedOK:
		return nil, fmt.Errorf("backup %s on %s not verified yet (%s)", last.ID, drive, activity)
	}
	return last, nil
}

// flushedPast checks that the WAL on the drive in the box reaches lsn.
func flushedPast(st *status.Status, lsn postgres.LSN) error {
	l := st.WAL.Local
	var got postgres.LSN
	if l.FlushedLSN == "" || got.Scan(l.FlushedLSN) != nil {
		return fmt.Errorf("no WAL flushed to the drive yet (streaming %v, %s)", l.Streaming, l.LastError)
	}
	if got < lsn {
		return fmt.Errorf("WAL on the drive reaches %s; want %s (streaming %v, %s)", got, lsn, l.Streaming, l.LastError)
	}
	return nil
}

// firstUnacknowledged is the condition the acknowledge action silences:
// the most severe one that needs staff and is not acknowledged yet; nil
// when there is none.
func firstUnacknowledged(st *status.Status) *status.Condition {
	for i, c := range st.Conditions {
		if c.Severity >= status.Attention && !c.Acknowledged {
			return &st.Conditions[i]
		}
	}
	return nil
}

// acknowledged checks that the condition named like c is acknowledged.
func acknowledged(st *status.Status, c status.Condition) error {
	for _, got := range st.Conditions {
		if got.Name == c.Name && got.Drive == c.Drive {
			if !got.Acknowledged {
				return fmt.Errorf("%q is not acknowledged", c.Name)
			}
			return nil
		}
	}
	return nil // it cleared meanwhile, which silences it too
}

// ejectedSafely checks that drive was ejected and may be pulled: the box
// shows it "safe to remove", or, once the guest's kernel has let the
// device go, the custody log's last movement of it is a removal after an
// eject. A removal without one fails at once.
func ejectedSafely(st *status.Status, drive string) error {
	if b := st.InBox; b != nil {
		if b.Drive == drive && b.Activity == status.SafeToRemove {
			return nil
		}
		return fmt.Errorf("the drive in the box is %q; want safe to remove", b.Activity)
	}
	for _, m := range st.Swap.Recent { // newest first
		if m.Drive != drive {
			continue
		}
		switch {
		case m.Event == "remove" && m.Decision == "ejected":
			return nil
		case m.Event == "remove":
			return failNowf("%s left the box without a safe eject: %s", drive, m.Decision)
		}
		break
	}
	return failNowf("%s left the box, and the custody log does not say so", drive)
}

// boxEmpty checks that the box holds no drive and, when drive is not
// empty, returns where the status says that drive is now.
func boxEmpty(st *status.Status, drive string) (string, error) {
	if b := st.InBox; b != nil {
		return "", fmt.Errorf("the box still holds a drive (%s %s, %s)", b.Generation, b.Decision, b.Activity)
	}
	if drive == "" {
		return "", nil
	}
	for _, d := range st.Drives {
		if d.ID == drive {
			return d.Where, nil
		}
	}
	return "", failNowf("drive %s is missing from the status's drives", drive)
}

func failNowf(format string, args ...any) error { return failNow{fmt.Errorf(format, args...)} }
