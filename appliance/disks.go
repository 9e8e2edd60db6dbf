package appliance

import (
	"context"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
)

// DiskSurvey reports the health of the box's disks that are not backup
// drives: its boot disk, an NVMe or SATA disk.
type DiskSurvey interface {
	Survey(ctx context.Context) ([]status.Disk, error)
}

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
