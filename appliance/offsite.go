package appliance

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/clinicbox/clinicbox/appliance/offsite"
	"github.com/clinicbox/clinicbox/appliance/status"
)

// Offsite ships WAL as it arrives, and base backups on a schedule, to the
// vault (offsite.Shipper).
type Offsite interface {
	Run(ctx context.Context) error
	Status() offsite.Status
	Due(now time.Time) (bool, string)
	UploadBackup(ctx context.Context, repoDir, backupID string) error
}

var _ Offsite = (*offsite.Shipper)(nil)

// offsiteDownAfter is how long the vault may be unreachable before staff
// are told.
const offsiteDownAfter = time.Hour

// startOffsite runs the shipper next to the loop.
func (a *Appliance) startOffsite(ctx context.Context) {
	if a.cfg.Offsite == nil {
		return
	}
	a.spawn(ctx, func(ctx context.Context) {
		if err := a.cfg.Offsite.Run(ctx); err != nil && ctx.Err() == nil {
			a.post(ctx, func() { a.event("offsite", "Offsite shipping stopped: "+err.Error()) })
		}
	})
}

// uploadIfDue sends a verified backup from the drive to the vault when the
// schedule says one is due.
func (a *Appliance) uploadIfDue(ctx context.Context, b *inBox, id string) {
	o := a.cfg.Offsite
	if o == nil || b.upload != nil {
		return
	}
	due, why := o.Due(a.cfg.Now())
	if !due {
		return
	}
	a.event("offsite", fmt.Sprintf("Uploading base backup %s to the vault (%s).", id, why))
	dir := a.repoPath(b)
	// The upload reads the drive: an eject stops it first (it resumes from
	// the vault's offset with the next drive's backup).
	b.upload = a.spawn(ctx, func(ctx context.Context) {
		err := o.UploadBackup(ctx, dir, id)
		a.post(ctx, func() {
			b.upload = nil
			if errors.Is(err, context.Canceled) {
				return
			}
			if err != nil {
				a.event("offsite", "The upload of base backup "+id+" to the vault failed: "+err.Error())
				return
			}
			a.event("offsite", "Base backup "+id+" is in the vault.")
		})
	})
}

// offsiteStatus fills the offsite part of the status document and returns
// its conditions.
func (a *Appliance) offsiteStatus(st *status.Status, now time.Time) []status.Condition {
	if a.cfg.Offsite == nil {
		return nil
	}
	o := a.cfg.Offsite.Status()
	st.Offsite = []status.Offsite{{Name: o.Destination, Connected: o.Connected, BacklogBytes: o.BacklogBytes, LastBaseBackup: o.RestorableTime,
		Lag: status.Lag{Streaming: o.Connected, FlushedLSN: o.Durable.String(), Bytes: o.BacklogBytes, Seconds: o.LagSeconds, LastFlush: o.LastDurable, LastError: o.LastError}}}
	if o.WaitingForWAL != "" {
		st.Offsite[0].WaitingForWAL = fmt.Sprintf("Base backup %s is in the vault; it counts once the vault holds the WAL up to %s (it holds %s).", o.WaitingForWAL, o.WaitingForWALTo, o.Durable)
	}
	if o.VaultFull {
		return []status.Condition{{Name: "offsite vault full", Severity: status.Attention, Since: o.LastErrorTime,
			Message: "The offsite vault is full for this practice: ask the vault's operator to raise the quota. Backups continue on the drives."}}
	}
	last := o.LastDurable
	if last.IsZero() {
		last = a.started
	}
	if !o.Connected && now.Sub(last) > offsiteDownAfter {
		return []status.Condition{{Name: "offsite down", Severity: status.Attention, Since: last,
			Message: fmt.Sprintf("The offsite vault has not been reachable since %s (%s). Backups continue on the drives; ask IT to check the internet link.", last.Format("Mon 15:04"), o.LastError)}}
	}
	return nil
}
