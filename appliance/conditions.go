package appliance

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/drivers/postgres"
	"github.com/clinicbox/clinicbox/rotation"
)

// serverCheck is the last look at the clinic's server.
type serverCheck struct {
	at   time.Time
	err  error
	sys  postgres.System
	slot postgres.SlotHealth
	// offsite is the offsite shipper's slot (named offsiteSlot); it keeps
	// WAL on the server while the vault is out of reach.
	offsite     postgres.SlotHealth
	offsiteSlot string
	limit       int64
	running     bool
	checkedAt   time.Time
}

// checkServer looks at the server and its slot in the background, at most
// once per tick.
func (a *Appliance) checkServer(ctx context.Context) {
	if a.srv.running {
		return
	}
	a.srv.running = true
	a.spawn(ctx, func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		var c serverCheck
		conn, err := postgres.Connect(ctx, a.dbURL)
		if err == nil {
			c.sys = conn.System
			c.limit = conn.System.MaxSlotKeepMB << 20
			conn.Close()
			c.slot, err = postgres.ReadSlotHealth(ctx, a.dbURL, a.set.Slot)
		}
		if o := a.cfg.Offsite; err == nil && o != nil {
			c.offsiteSlot = o.Status().Slot
			c.offsite, err = postgres.ReadSlotHealth(ctx, a.dbURL, c.offsiteSlot)
		}
		c.err = err
		a.post(ctx, func() { c.checkedAt = a.cfg.Now(); a.srv = c })
	})
}

// Names of the drive's failure conditions.
const (
	condBackupFailed  = "backup failed"
	condStreamStopped = "wal stream stopped"
)

var rotationSeverity = map[rotation.Kind]status.Severity{
	rotation.DriveFailing: status.Failure,
	rotation.NoDrive:      status.Attention,
	rotation.ForeignDrive: status.Attention,
	rotation.UnknownDrive: status.Attention,
	rotation.Refused:      status.Attention,
	rotation.DriveOverdue: status.Attention,
	rotation.WrongDrive:   status.Attention,
	rotation.SwapDue:      status.Attention,
	rotation.TooFewDrives: status.Attention,
}

// conditions lists everything the box wants people to know, most severe
// first.
func (a *Appliance) conditions(now time.Time) []status.Condition {
	if !a.cfg.ClockTrusted() {
		return []status.Condition{{Name: "waiting for the clock", Severity: status.Busy, Since: a.started,
			Message: "The box is waiting for the network time before it decides anything by date."}}
	}
	out := a.rotationConditions(now)
	if b := a.box; b != nil {
		out = append(out, a.driveConditions(b)...)
	}
	if a.srv.err != nil {
		out = append(out, status.Condition{Name: "database unreachable", Severity: status.Failure,
			Message: "The box cannot reach the practice's database server: " + a.srv.err.Error()})
	} else {
		out = append(out, a.slotConditions()...)
	}
	out = append(out, a.notEncrypted()...)
	if h, ok := a.cfg.Notifier.(interface{ Health() error }); ok {
		if err := h.Health(); err != nil {
			out = append(out, status.Condition{Name: "alerts failing", Severity: status.Attention,
				Message: "Alert e-mails or webhooks are not getting through: " + err.Error() + " Ask IT to check the alert settings."})
		}
	}
	return out
}

// rotationConditions are the rotation's own conditions, less those the
// drive in the box answers for now.
func (a *Appliance) rotationConditions(now time.Time) []status.Condition {
	var out []status.Condition
	b := a.box
	_, dec := a.policy.Evaluate(a.rot, now)
	for _, c := range dec.Conditions {
		if c.Kind == rotation.SwapDue && (!a.swapReady(b) || b.ejected) {
			continue // not before the drive's backup is verified; done once ejected
		}
		if c.Kind == rotation.NoDrive && b != nil {
			continue // a drive is in and being identified
		}
		out = append(out, status.Condition{Name: string(c.Kind), Severity: rotationSeverity[c.Kind], Drive: string(c.Drive), Message: c.Reason, Since: c.Since})
	}
	return out
}

// driveConditions are what the drive in the box is doing and what went
// wrong with it. Their onset is when the box first shows them.
func (a *Appliance) driveConditions(b *inBox) []status.Condition {
	var out []status.Condition
	add := func(name string, sev status.Severity, msg string) {
		out = append(out, status.Condition{Name: name, Severity: sev, Drive: string(b.dec.Drive), Message: msg})
	}
	if c, ok := a.activityCondition(b); ok {
		out = append(out, c)
	}
	if b.problem != "" {
		add(condBackupFailed, status.Failure, b.problem)
	}
	if b.streamErr != "" {
		add(condStreamStopped, status.Failure, "Continuous backup onto the drive stopped: "+b.streamErr)
	}
	if b.health.Verdict == status.VerdictWarning {
		add("drive health", status.Attention, nameOf(b)+" shows signs of wear: "+first(b.health.Reasons)+" Plan to replace it.")
	}
	return out
}

// slotConditions warns when the server keeps more WAL for the drive's or
// the vault's slot than the warning level, and when it is about to give up
// on either.
func (a *Appliance) slotConditions() []status.Condition {
	warn := a.set.SlotWarnBytes
	if warn == 0 {
		warn = 8 << 30
		if a.srv.limit > 0 {
			warn = a.srv.limit / 2
		}
	}
	var out []status.Condition
	add := func(sev status.Severity, msg string) {
		out = append(out, status.Condition{Name: "slot retention", Severity: sev, Message: msg})
	}
	if s := a.srv.slot; s.Exists {
		switch {
		case s.AtRisk():
			add(status.Failure, fmt.Sprintf("The server is about to drop the WAL it keeps for the box (%s); put a drive in now, or a new full backup will be needed.", s.WALStatus))
		case s.RetainedBytes > warn:
			add(status.Attention, fmt.Sprintf("The server keeps %s of WAL for the box because no drive has taken it; put the expected drive in.", status.Bytes(s.RetainedBytes)))
		}
	}
	if s := a.srv.offsite; s.Exists {
		switch {
		case s.AtRisk():
			add(status.Failure, fmt.Sprintf("The server is about to drop the WAL it keeps for the offsite vault (%s); ask IT to restore the internet link now, or the vault will have a gap until its next base backup.", s.WALStatus))
		case s.RetainedBytes > warn:
			add(status.Attention, fmt.Sprintf("The server keeps %s of WAL for the offsite vault because the vault has not taken it; ask IT to check the internet link.", status.Bytes(s.RetainedBytes)))
		}
	}
	return out
}

// swapReady reports whether the drive in the box holds a verified backup
// taken since it came in, so it may leave.
func (a *Appliance) swapReady(b *inBox) bool {
	if b == nil || b.dec.Drive == "" || b.job != nil {
		return false
	}
	d, ok := a.rot.Drive(b.dec.Drive)
	if !ok {
		return false
	}
	for i := len(a.book.Backups) - 1; i >= 0; i-- {
		r := a.book.Backups[i]
		if r.Drive == string(b.dec.Drive) && !r.Start.Before(d.InsertedAt) {
			return r.Verified == status.VerifiedOK
		}
	}
	return false
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// mirror is the panel state the lights show for conds, when no panel
// driver reports its own.
func mirror(conds []status.Condition) status.Panel {
	p := status.Panel{Green: "steady", Amber: "off", Red: "off", Buzzer: "silent"}
	if len(conds) == 0 {
		return p
	}
	c := conds[0]
	p.Condition = c.Name
	switch c.Severity {
	case status.Busy:
		p.Green = "slow"
	case status.Attention:
		p.Green, p.Amber = "off", "steady"
		if !c.Acknowledged {
			p.Buzzer = "one short beep"
		}
	case status.Failure:
		p.Green, p.Red = "off", "fast"
		if !c.Acknowledged {
			p.Buzzer = "three beeps every minute"
		}
	}
	return p
}

// evaluate rebuilds the status document and hands it to the panel, the
// alerts and the pages. Building it (document) has no effects; the rest of
// evaluate is the effects.
func (a *Appliance) evaluate(ctx context.Context) {
	now := a.cfg.Now()
	a.recordHealth()
	var st status.Status
	conds := append(a.conditions(now), a.offsiteStatus(&st, now)...)
	conds = append(conds, a.drillConditions()...)
	a.onsets.stamp(conds, now)
	st = a.document(st, conds, now)
	if a.cfg.Panel != nil {
		a.cfg.Panel.Set(st.Conditions)
		st.Panel = a.cfg.Panel.State()
	}
	smp := status.Sample{Time: now, LocalSeconds: st.WAL.Local.Seconds, RetainedBytes: a.srv.slot.RetainedBytes}
	if len(st.Offsite) > 0 {
		smp.OffsiteSeconds = st.Offsite[0].Lag.Seconds
	}
	a.history.Add(smp)
	if a.cfg.Notifier != nil {
		a.cfg.Notifier.Update(now, st)
	}
	a.publish(st)
}

// document builds the status document as of now from the box's state,
// conds and st's offsite part. The panel part is what the lights would
// show (mirror); evaluate replaces it with the panel's own report.
func (a *Appliance) document(st status.Status, conds []status.Condition, now time.Time) status.Status {
	sortConditions(conds)
	st.Time, st.Conditions, st.Severity = now, conds, status.Worst(conds)
	st.Box = a.boxStatus()
	st.Headline = headline(conds)
	st.Panel = mirror(conds)
	a.fillDrives(&st, now)
	st.Backups = slices.Clone(a.book.Backups)
	st.Disks = slices.Clone(a.disks)
	st.Drills = slices.Clone(a.book.Drills)
	st.Events = slices.Clone(a.book.Events)
	slices.Reverse(st.Events)
	st.Maint = a.book.Maint
	if a.consent.After(now) {
		st.Support.ConsentUntil = a.consent
	}
	st.Database = a.databaseStatus()
	st.Slots = a.slotStatus()
	st.WAL.ServerLSN = a.srv.sys.XLogPos.String()
	if b := a.box; b != nil && b.stream != nil {
		// The stream stamps its flushes with the appliance's clock.
		st.WAL.Local = localWAL(b, a.srv.sys.XLogPos, now)
	}
	return st
}

// sortConditions puts the most severe first; within a severity, what
// nobody acknowledged yet comes first, so the panel sounds for it and the
// button's next press acknowledges it.
func sortConditions(conds []status.Condition) {
	slices.SortStableFunc(conds, func(x, y status.Condition) int {
		if x.Severity != y.Severity {
			return int(y.Severity) - int(x.Severity)
		}
		return cmp.Compare(b2i(x.Acknowledged), b2i(y.Acknowledged))
	})
}

// headline is the message of the first condition worse than good, in
// conds sorted by sortConditions.
func headline(conds []status.Condition) string {
	for _, c := range conds {
		if c.Severity > status.Good {
			return c.Message
		}
	}
	return "All good. Backups are current; nothing to do."
}

func (a *Appliance) boxStatus() status.Box {
	host, _ := os.Hostname()
	if a.cfg.Hostname != "" {
		host = a.cfg.Hostname
	}
	return status.Box{Hostname: host, Version: a.cfg.Version, Started: a.started, ClockTrusted: a.cfg.ClockTrusted(), Setup: "ok",
		SigningKey: a.key.Signer.Public().String()}
}

func (a *Appliance) databaseStatus() status.Database {
	d := status.Database{Target: Redact(a.set.Database.URL), Reachable: a.srv.err == nil && !a.srv.checkedAt.IsZero(), SystemID: fmt.Sprint(a.srv.sys.ID), Version: a.srv.sys.ServerVersion}
	if a.srv.err != nil {
		d.LastError = a.srv.err.Error()
	}
	return d
}

func (a *Appliance) slotStatus() []status.Slot {
	var out []status.Slot
	if s := a.srv.slot; s.Exists || !a.srv.checkedAt.IsZero() {
		out = []status.Slot{{Name: a.set.Slot, Exists: s.Exists, Active: s.Active, WALStatus: s.WALStatus, RetainedBytes: s.RetainedBytes, LimitBytes: a.srv.limit}}
	}
	if s := a.srv.offsite; s.Exists {
		out = append(out, status.Slot{Name: a.srv.offsiteSlot, Exists: true, Active: s.Active, WALStatus: s.WALStatus, RetainedBytes: s.RetainedBytes, LimitBytes: a.srv.limit})
	}
	return out
}

// localWAL is how far the drive's WAL stream is behind the server at
// serverAt, as of now (the appliance's clock, which stamps the flushes).
func localWAL(b *inBox, serverAt postgres.LSN, now time.Time) status.Lag {
	lag := status.Lag{Streaming: true, LastError: b.streamErr}
	if l, ok := b.flushed.Load().(postgres.LSN); ok {
		lag.FlushedLSN = l.String()
		if serverAt > l {
			lag.Bytes = int64(serverAt - l)
		}
	}
	if t := b.lastFlush.Load(); t != 0 && lag.Bytes > 0 {
		lag.LastFlush = time.Unix(0, t)
		lag.Seconds = now.Sub(lag.LastFlush).Seconds()
	}
	return lag
}

// recordHealth keeps the health of the drive in the box in its history.
func (a *Appliance) recordHealth() {
	if b := a.box; b != nil && b.dec.Drive != "" && b.health.Verdict != "" {
		if a.book.setHealth(b.dec.Drive, b.health) {
			a.saveBook()
		}
	}
}

func (a *Appliance) fillDrives(st *status.Status, now time.Time) {
	next, _ := a.rot.ExpectedNext()
	st.Expected = next.Generation
	for _, d := range a.rot.Drives {
		sd := status.Drive{ID: string(d.ID), Generation: d.Generation, Where: string(d.Status), Expected: d.ID == next.ID && d.ID != "",
			Serial: d.Serial, Capacity: d.Capacity, InsertedAt: d.InsertedAt, AwaySince: d.AwaySince, Health: a.book.health(d.ID),
			HealthTrend: slices.Clone(a.book.HealthLog[d.ID])}
		for _, r := range a.book.Backups {
			if r.Drive == string(d.ID) && r.Verified == status.VerifiedOK && r.End.After(sd.LastBackup) {
				sd.LastBackup = r.End
			}
		}
		st.Drives = append(st.Drives, sd)
	}
	if b := a.box; b != nil {
		kind := string(b.dec.Kind)
		if kind == "" {
			kind = "identifying"
		}
		st.InBox = &status.InBox{Drive: string(b.dec.Drive), Generation: b.dec.Generation, Decision: kind, Writable: b.writable, Activity: b.activity,
			Progress: math.Float64frombits(b.progress.Load())}
	}
	if d, ok := a.rot.Drive(a.rot.InBox); ok {
		st.Swap.DueAt = a.policy.Calendar.SwapDueAt(d.InsertedAt)
		st.Swap.Due = a.policy.Calendar.SwapDue(d.InsertedAt, now)
	}
	for i := len(a.custody.Entries()) - 1; i >= 0 && len(st.Swap.Recent) < 10; i-- {
		e := a.custody.Entries()[i]
		st.Swap.Recent = append(st.Swap.Recent, status.Movement{Time: e.Time, Drive: string(e.Drive), Generation: e.Generation, Event: e.Event, Decision: string(e.Decision), Who: e.Who})
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
