package appliance

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/clinicbox/clinicbox/drivers/fscrypt"
)

// scratchOnDrive is the drill's scratch parent on a drive.
const scratchOnDrive = ".clinicbox-scratch"

// scratchParents are where a drill of the drive in b may restore, best
// first: the drive itself (room for the database, and a pulled drive takes
// only ciphertext with it), then the box's own scratch (on /perm, about
// 0.9 GiB on the Pi). Either must encrypt (see openScratch).
func (a *Appliance) scratchParents(b *inBox) []string {
	var out []string
	if b.dir != "" {
		out = append(out, filepath.Join(b.dir, scratchOnDrive))
	}
	if a.cfg.Drills.Scratch != "" {
		out = append(out, a.cfg.Drills.Scratch)
	}
	return out
}

// openScratch makes the drill's scratch directory in the first parent
// whose filesystem encrypts it with a key that lives only in the kernel,
// so that a power cut leaves nothing readable. Leftovers of earlier drills
// there are deleted first. A database too large for the directory chosen
// is reported by the restore, which checks the free space.
func openScratch(parents []string) (*fscrypt.Dir, error) {
	var why []string
	for _, p := range parents {
		if err := os.MkdirAll(p, 0o711); err != nil {
			why = append(why, err.Error())
			continue
		}
		if err := fscrypt.Sweep(p); err != nil {
			why = append(why, err.Error())
			continue
		}
		d, err := fscrypt.New(p)
		if err == nil {
			return d, nil
		}
		os.Remove(p) // only when empty: the parent made above
		why = append(why, fmt.Sprintf("%s: %v", p, err))
	}
	if len(why) == 0 {
		why = append(why, "none configured")
	}
	return nil, fmt.Errorf("there is no scratch space that keeps a restored database unreadable after a power cut (%s)", strings.Join(why, "; "))
}

// sweepScratch deletes what drills left in the box's scratch when the
// power went or the service stopped mid-drill: ciphertext whose key died
// with the kernel. Leftovers on a drive go before its next drill.
func (a *Appliance) sweepScratch() {
	if a.cfg.Drills == nil || a.cfg.Drills.Scratch == "" {
		return
	}
	if err := fscrypt.Sweep(a.cfg.Drills.Scratch); err != nil && !errors.Is(err, os.ErrNotExist) {
		a.log.Warn("drill scratch not swept", "err", err)
	}
}
