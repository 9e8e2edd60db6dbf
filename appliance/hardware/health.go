package hardware

import (
	"context"

	"github.com/clinicbox/clinicbox/appliance/drive"
	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/drivers/smart"
	"github.com/clinicbox/clinicbox/drivers/usb"
)

// SMARTHealth checks drives, and surveys the box's other disks, with
// drivers/smart.
type SMARTHealth struct {
	Checker *smart.Checker
	// Identifier lists the disks to survey; its zero value reads the
	// real sysfs.
	Identifier usb.Identifier
}

// Check reports a drive's health for the status document; a drive that
// just came in is asked afresh even if it hung before.
func (h SMARTHealth) Check(ctx context.Context, d drive.Drive) status.Health {
	info := d.Info()
	if info.Disk == "" {
		return status.Health{Verdict: status.VerdictUnknown, Reasons: []string{"a simulated drive has no health data"}}
	}
	return h.checkDisk(ctx, info.Disk, info.Bridge)
}

func (h SMARTHealth) checkDisk(ctx context.Context, disk, bridge string) status.Health {
	h.Checker.Forget(disk)
	return healthOf(h.Checker.Check(ctx, disk, bridge))
}

func healthOf(r smart.Report) status.Health {
	return status.Health{Verdict: verdict(r.Verdict), Reasons: r.Reasons, Temperature: r.Temperature,
		BadSectors: badSectors(r), PowerOnHours: r.PowerOnHours, Checked: r.Checked}
}

// badSectors adds up the counters whose growth means a dying drive.
func badSectors(r smart.Report) int64 {
	n := int64(r.MediaErrors)
	for _, a := range r.Attributes {
		switch a.ID {
		case 5, 197, 198: // reallocated, pending, offline uncorrectable
			n += int64(a.Raw)
		}
	}
	return n
}

// verdict is the status document's word for a SMART verdict; a word this
// version does not know counts as unknown, never as healthy.
func verdict(v smart.Verdict) status.Verdict {
	switch v {
	case smart.OK:
		return status.VerdictOK
	case smart.Warning:
		return status.VerdictWarning
	case smart.Failing:
		return status.VerdictFailing
	case smart.Unknown:
	}
	return status.VerdictUnknown
}
