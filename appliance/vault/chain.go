package vault

import (
	"fmt"

	"github.com/clinicbox/clinicbox/appliance/archive"
)

// An incremental backup (archive.KindIncremental) is restorable only with
// every backup of its chain: the vault commits one only when it holds its
// parent, records the parent in the arrival record (the box's signature
// must name the same parent for the backup to be confirmed), and
// retention keeps every backup a kept one builds on, however old.

// checkParent refuses an incremental backup whose parent the vault does not
// hold. b.mu is held.
func (b *box) checkParent(m *archive.Backup) error {
	switch {
	case m.Kind == "" || m.Kind == archive.KindFull:
		if m.Parent != "" {
			return problem("malformed", "backup %s is full but names a parent", m.ID)
		}
		return nil
	case m.Kind != archive.KindIncremental:
		return problem("malformed", "backup %s is of kind %q, which this vault does not store: update the vault", m.ID, m.Kind)
	}
	if err := checkBackupID(m.Parent); err != nil || m.Parent >= m.ID {
		return problem("malformed", "backup %s names %q as its parent, which is not an older backup", m.ID, m.Parent)
	}
	if _, err := b.root.Stat(backupRel(m.Parent)); err != nil {
		return problem("missing-parent", "backup %s builds on backup %s, which the vault does not hold: the box sends a full backup instead", m.ID, m.Parent)
	}
	return nil
}

// chainReason starts the reason a backup is kept only for a chain: its own
// WAL need not be kept (a restore of the incremental replays WAL from the
// incremental's start).
const chainReason = "the incremental backup "

// keepChains adds to keep every backup that a kept backup builds on.
func keepChains(arrivals []*Arrival, keep map[string]string) {
	byID := make(map[string]*Arrival, len(arrivals))
	for _, a := range arrivals {
		byID[a.ID] = a
	}
	for id := range keep {
		for a := byID[id]; a != nil && a.Parent != ""; a = byID[a.Parent] {
			if _, ok := keep[a.Parent]; ok {
				break
			}
			keep[a.Parent] = fmt.Sprintf("%s%s builds on it", chainReason, a.ID)
		}
	}
}
