package appliance

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/restore"
	"github.com/clinicbox/clinicbox/drivers/fscrypt"
	"github.com/clinicbox/clinicbox/drivers/tmpfs"
)

// scratchOnDrive is the drill's scratch parent on a drive.
const scratchOnDrive = ".clinicbox-scratch"

// drillReserve is the memory a drill in RAM leaves to everything else the
// box runs meanwhile: the box itself while it streams WAL and takes the
// night's backup (its peak RSS during a drill is recorded in each report),
// and the drill's own PostgreSQL (shared_buffers of 128 MB, amcheck's
// maintenance_work_mem of 64 MB and its processes), with room to spare
// for the kernel's page cache, which the drive's writes go through.
const drillReserve = 512 << 20

// scratch is a drill's scratch directory: encrypted by the kernel, or in
// memory only.
type scratch struct {
	path   string
	inRAM  bool
	remove func() error
}

// notRunError is a drill the box could not run at all: it proves nothing
// either way, and says what would let it run.
type notRunError struct{ why string }

func (e *notRunError) Error() string { return e.why }

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

// drillScratch opens the scratch of a drill of repo to target: encrypted
// by the kernel where a file system can (openEncrypted); otherwise in
// memory, when the restored database fits what the box can spare; and
// otherwise none, a drill not run.
func (a *Appliance) drillScratch(b *inBox, repo *archive.Repo, target restore.Target) (*scratch, error) {
	d, encErr := openEncrypted(a.scratchParents(b))
	if encErr == nil {
		a.log.Info("drill scratch encrypted by the kernel", "path", d.Path)
		return &scratch{path: d.Path, remove: d.Remove}, nil
	}
	if a.cfg.Drills.RAMScratch == "" {
		return nil, &notRunError{encErr.Error()}
	}
	need, err := restore.SpaceNeeded(repo, a.key.Identities(), target)
	if err != nil {
		return nil, err
	}
	mem, err := a.cfg.Drills.memory()
	if err != nil {
		return nil, &notRunError{fmt.Sprintf("%v, and the box cannot tell how much memory it has: %v", encErr, err)}
	}
	budget := ramBudget(mem)
	if need > budget {
		return nil, &notRunError{fmt.Sprintf("the restored database needs %s and the box can spare %s of memory for a drill "+
			"(%s available, %s kept for the backups), and no file system here can encrypt a drill's scratch on disk (%v); "+
			"make the drives' ext4 with the encrypt feature (tune2fs -O encrypt) or give the box more memory",
			mib(need), mib(budget), mib(mem.Available), mib(drillReserve), encErr)}
	}
	t, err := tmpfs.Mount(a.cfg.Drills.RAMScratch, budget)
	if err != nil {
		return nil, &notRunError{fmt.Sprintf("%v; a scratch in memory failed too: %v", encErr, err)}
	}
	a.log.Info("drill scratch in memory: no file system here encrypts", "need", need, "budget", budget, "why", encErr)
	return &scratch{path: t.Path, inRAM: true, remove: t.Remove}, nil
}

// ramBudget is how much of its memory the box lets a drill's database
// take: what the kernel has available less drillReserve, and at most half
// of the RAM (tmpfs's own default ceiling).
func ramBudget(m tmpfs.Memory) int64 {
	return max(0, min(m.Available-drillReserve, m.Total/2))
}

func mib(n int64) string { return fmt.Sprintf("%d MiB", n>>20) }

// memory reads the kernel's memory figures.
func (c *DrillConfig) memory() (tmpfs.Memory, error) {
	if c.Memory != nil {
		return c.Memory()
	}
	return tmpfs.ReadMemory()
}

// openEncrypted makes the drill's scratch directory in the first parent
// whose filesystem encrypts it with a key that lives only in the kernel,
// so that a power cut leaves nothing readable. Leftovers of earlier drills
// there are deleted first. A database too large for the directory chosen
// is reported by the restore, which checks the free space.
func openEncrypted(parents []string) (*fscrypt.Dir, error) {
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
// with the kernel, and a scratch in memory still mounted after the
// service alone stopped. Leftovers on a drive go before its next drill.
func (a *Appliance) sweepScratch() {
	if a.cfg.Drills == nil {
		return
	}
	if p := a.cfg.Drills.Scratch; p != "" {
		if err := fscrypt.Sweep(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			a.log.Warn("drill scratch not swept", "err", err)
		}
	}
	if p := a.cfg.Drills.RAMScratch; p != "" {
		if err := tmpfs.Sweep(p); err != nil {
			a.log.Warn("drill scratch in memory not swept", "err", err)
		}
	}
}
