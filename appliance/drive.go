package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/rotation"
)

// Drive is a drive plugged into the box, as the appliance uses it.
type Drive interface {
	// Name is the kernel's name for it ("sda1"), or a simulated drive's.
	Name() string
	// Info is what the hardware and the filesystem say about it.
	Info() DriveInfo
	// Mount mounts the drive's filesystem, read-only unless writable, and
	// returns the mount point. Mounting again with writable set remounts.
	Mount(ctx context.Context, writable bool) (string, error)
	// Unmount flushes and unmounts the drive, leaving it attached.
	Unmount(ctx context.Context) error
	// Eject flushes, unmounts and powers the drive down; it reports
	// whether the drive is now safe to remove.
	Eject(ctx context.Context) (bool, error)
}

// DriveInfo identifies a drive's hardware and filesystem.
type DriveInfo struct {
	Disk     string // the whole disk's device node ("/dev/sda"), for health checks; empty when simulated
	Serial   string // the drive's or its bridge's serial; may be empty
	Bridge   string // USB vendor:product of the bridge; empty when not USB
	FSUUID   string
	Label    string
	Capacity int64
}

// DriveEvent is a drive arriving or leaving.
type DriveEvent struct {
	Arrived bool
	Drive   Drive
}

// DriveSource reports drives arriving and leaving until ctx ends.
type DriveSource interface {
	Run(ctx context.Context, out chan<- DriveEvent) error
}

// Health checks a drive's SMART health.
type Health interface {
	Check(ctx context.Context, d Drive) status.Health
}

// identityFile is written at the root of an enrolled drive's filesystem.
const identityFile = "clinicbox-drive.json"

// repoDir is the repository's directory on a drive.
const repoDir = "clinicbox"

type identityDoc struct {
	ID        rotation.DriveID `json:"id"`
	Signature []byte           `json:"signature"`
	Note      string           `json:"note"`
}

// readIdentity reads a mounted drive's identity file; a drive without one
// has an empty ID.
func readIdentity(dir string, info DriveInfo) (rotation.Identity, error) {
	id := rotation.Identity{FSUUID: info.FSUUID, Serial: info.Serial}
	b, err := os.ReadFile(filepath.Join(dir, identityFile))
	if errors.Is(err, os.ErrNotExist) {
		return id, nil
	}
	if err != nil {
		return id, fmt.Errorf("appliance: read drive identity: %w", err)
	}
	var doc identityDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return id, nil // a damaged identity is an unknown drive, never written
	}
	id.ID, id.Signature = doc.ID, doc.Signature
	return id, nil
}

// writeIdentity enrolls a mounted drive: its identity file, signed.
func writeIdentity(dir string, id rotation.DriveID, sig []byte) error {
	b, _ := json.MarshalIndent(identityDoc{ID: id, Signature: sig,
		Note: "This drive belongs to a clinicbox. Its backups are encrypted; the keys are not on this drive."}, "", "  ")
	return writeFileAtomic(filepath.Join(dir, identityFile), append(b, '\n'), 0o644)
}
