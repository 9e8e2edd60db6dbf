package hardware

import (
	"context"
	"strings"

	"github.com/clinicbox/clinicbox/appliance/status"
)

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
