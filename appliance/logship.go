package appliance

import (
	"context"
	"errors"
	"time"

	"github.com/clinicbox/clinicbox/appliance/audit"
	"github.com/clinicbox/clinicbox/appliance/offsite"
)

// logShipper sends the box's logs to the vault (offsite.Shipper).
type logShipper interface {
	ShipLogs(ctx context.Context, logs []*offsite.FileLog) error
}

var _ logShipper = (*offsite.Shipper)(nil)

// logsEvery is how often the custody and audit logs go to the vault; an
// eject sends them at once too.
const logsEvery = 5 * time.Minute

// fileLogs are the custody and audit logs as the shipper reads them, from
// their files: the loop owns the custody log in memory, the shipper never
// touches it.
func (a *Appliance) fileLogs() []*offsite.FileLog {
	keys, now := a.key.LogKeys(), a.cfg.Now
	custody, auditLog := a.path("custody.jsonl"), a.path("audit.jsonl")
	return []*offsite.FileLog{
		{Name: "custody", Files: func() []string { return []string{custody} }, Keys: keys, Now: now},
		{Name: "audit", Files: func() []string { return audit.Files(auditLog) }, Keys: keys, Now: now},
	}
}

// startLogs sends the logs to the vault every few minutes and after each
// eject, beside WAL shipping and never in its way. A refusal by the vault
// is reported once as an event; a vault out of reach is the offsite
// condition's to report.
func (a *Appliance) startLogs(ctx context.Context) {
	ls, ok := a.cfg.Offsite.(logShipper)
	if !ok {
		return
	}
	logs := a.fileLogs()
	a.spawn(ctx, func(ctx context.Context) {
		t := time.NewTicker(logsEvery)
		defer t.Stop()
		reported := map[string]bool{}
		for {
			var err error
			if a.cfg.ClockTrusted() { // heads carry the time they were signed
				err = ls.ShipLogs(ctx, logs)
			}
			for _, r := range refusals(err) {
				if !reported[r.Log] {
					reported[r.Log] = true
					msg := "The vault refuses the box's " + r.Log + " log, which is no longer sent there: " + r.Reason + ". Ask support to compare the box's log with the vault's."
					a.post(ctx, func() { a.event("offsite", msg) })
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-a.logsNow:
			}
		}
	})
}

// refusals are the *offsite.LogRefused in err.
func refusals(err error) []*offsite.LogRefused {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	var out []*offsite.LogRefused
	for _, e := range errs {
		var r *offsite.LogRefused
		if errors.As(e, &r) {
			out = append(out, r)
		}
	}
	return out
}

// shipLogsNow sends the logs at once (after an eject).
func (a *Appliance) shipLogsNow() {
	select {
	case a.logsNow <- struct{}{}:
	default:
	}
}
