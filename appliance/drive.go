package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/clinicbox/clinicbox/appliance/drive"
	"github.com/clinicbox/clinicbox/appliance/durable"
	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/drivers/usb/drivefile"
	"github.com/clinicbox/clinicbox/rotation"
)

// DriveSource reports drives arriving and leaving until ctx ends.
type DriveSource interface {
	Run(ctx context.Context, out chan<- drive.Event) error
}

// Health checks a drive's SMART health.
type Health interface {
	Check(ctx context.Context, d drive.Drive) status.Health
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

// maxIdentityFile is the most read of a drive's identity file; the box
// writes about 300 bytes.
const maxIdentityFile = 16 << 10

// readIdentity reads a mounted drive's identity file; a drive without one
// has an empty ID. The file is read as a stranger's drive may hold it (see
// drivefile), and an identity no clinicbox writes is refused with the
// reason in words for the panel.
func readIdentity(ctx context.Context, dir string, info drive.Info) (rotation.Identity, error) {
	id := rotation.Identity{FSUUID: info.FSUUID, Serial: info.Serial}
	if err := id.Check(); err != nil {
		return rotation.Identity{}, err
	}
	b, err := drivefile.ReadFile(ctx, filepath.Join(dir, identityFile), maxIdentityFile)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return id, nil
	case errors.Is(err, drivefile.ErrNotRegular):
		return rotation.Identity{}, fmt.Errorf("its identity file is not an ordinary file, so no clinicbox made it: %w", err)
	case errors.Is(err, drivefile.ErrTooLarge):
		return rotation.Identity{}, fmt.Errorf("its identity file is larger than any clinicbox writes: %w", err)
	case err != nil:
		return rotation.Identity{}, fmt.Errorf("its identity file cannot be read: %w", err)
	}
	var doc identityDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return id, nil // a damaged identity is an unknown drive, never written
	}
	id.ID, id.Signature = doc.ID, doc.Signature
	if err := id.Check(); err != nil {
		return rotation.Identity{}, err
	}
	return id, nil
}

// writeIdentity enrolls a mounted drive: its identity file, signed.
func writeIdentity(dir string, id rotation.DriveID, sig []byte) error {
	b, _ := json.MarshalIndent(identityDoc{ID: id, Signature: sig,
		Note: "This drive belongs to a clinicbox. Its backups are encrypted; the keys are not on this drive."}, "", "  ")
	return durable.WriteFile(filepath.Join(dir, identityFile), append(b, '\n'), 0o644)
}

// resign signs the identity of a drive enrolled before signatures covered
// the filesystem and serial again, with the box's signing key, on the
// drive mounted writable.
func (a *Appliance) resign(b *inBox) {
	id := b.id
	id.Signature = a.key.SignDrive(id)
	if err := writeIdentity(b.dir, id.ID, id.Signature); err != nil {
		a.event("insert", fmt.Sprintf("The identity of drive %s could not be signed again (%v); the box tries again the next time it writes to the drive.", id.ID, err))
		return
	}
	b.id, b.oldSigned = id, false
	a.event("insert", fmt.Sprintf("The identity of drive %s is now signed with the box's signing key, together with its filesystem and serial number.", id.ID))
}
