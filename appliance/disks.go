package appliance

import (
	"context"
	"strings"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
)

// DiskSurvey reports the health of the box's disks that are not backup
// drives: its boot disk, an NVMe or SATA disk.
type DiskSurvey interface {
	Survey(ctx context.Context) ([]status.Disk, error)
}

var _ DiskSurvey = SMARTHealth{}

// surveyDisks checks the box's other disks on the first tick and then as
// often as the drive in the box; the result goes into the status as is.
func (a *Appliance) surveyDisks(ctx context.Context) {
	if a.cfg.Disks == nil || a.diskSurvey != nil {
		return
	}
	now := a.cfg.Now()
	if !surveyDue(a.disksAt, now) {
		return
	}
	a.disksAt = now
	a.diskSurvey = a.spawn(ctx, func(ctx context.Context) {
		disks, err := a.cfg.Disks.Survey(ctx)
		a.post(ctx, func() {
			a.diskSurvey = nil
			if err != nil {
				a.log.Error("disk survey", "err", err)
				return
			}
			a.disks = disks
		})
	})
}

// surveyDue reports whether a disk survey last started at last is due
// again at now: at first, healthEvery later, and after the clock went
// back (a Pi that booted at 1970 and then set its clock).
func surveyDue(last, now time.Time) bool {
	since := now.Sub(last)
	return last.IsZero() || since < 0 || since >= healthEvery
}

// Survey checks every whole disk that is not on USB (USB disks are backup
// drives, checked as they come in, behind the bridge allowlist). Disks that
// keep no SMART data are listed as unknown without being asked.
func (h SMARTHealth) Survey(ctx context.Context) ([]status.Disk, error) {
	disks, err := h.Identifier.Disks()
	if err != nil {
		return nil, err
	}
	var out []status.Disk
	for _, d := range disks {
		if d.USB != nil || notADisk(d.Disk) {
			continue
		}
		sd := status.Disk{Name: d.Disk, Size: d.Size}
		if why := noSMART(d.Disk); why != "" {
			sd.Health = status.Health{Verdict: status.VerdictUnknown, Reasons: []string{why}}
		} else {
			r := h.Checker.Check(ctx, d.DevNode, "")
			sd.Model, sd.Serial, sd.Protocol, sd.Health = r.Model, r.Serial, r.Protocol, healthOf(r)
		}
		out = append(out, sd)
	}
	return out, nil
}

// notADisk reports whether a block device is the kernel's own making
// (loop, RAM, device-mapper, software RAID, network, optical) rather than
// a disk with health of its own.
func notADisk(name string) bool {
	for _, p := range []string{"loop", "ram", "zram", "dm-", "md", "nbd", "sr"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// noSMART says why a disk keeps no SMART data, or "" when it may.
func noSMART(name string) string {
	switch {
	case strings.HasPrefix(name, "mmcblk"):
		return "An SD card or eMMC keeps no SMART health data; keep a spare card with the box's image."
	case strings.HasPrefix(name, "vd"), strings.HasPrefix(name, "xvd"):
		return "A virtual disk has no SMART health data; its host's disks do."
	}
	return ""
}
