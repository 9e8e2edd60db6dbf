package appliance

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sync/atomic"
	"time"

	"filippo.io/age"
	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/backup"
	"github.com/clinicbox/clinicbox/appliance/drive"
	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/drivers/postgres"
	"github.com/clinicbox/clinicbox/rotation"
)

// inBox is the drive in the box and the work running on it. Only the loop
// goroutine touches its fields, except progress and lastFlush.
type inBox struct {
	dev      drive.Drive
	info     drive.Info
	id       rotation.Identity
	dec      rotation.Decision
	health   status.Health
	dir      string
	mounted  bool
	writable bool
	activity status.Activity
	problem  string // why the drive is not written, or what failed on it
	ejected  bool
	// oldSigned is set when the drive's identity carries the box's older
	// signature (over the ID alone): it is signed again the next time the
	// drive is written.
	oldSigned bool
	// goneEjecting is set when the kernel removed the drive while an eject
	// was running: the eject's own last step removes it, so whether that
	// was safe is for the eject's result to say.
	goneEjecting bool

	job    *worker // backup, verification, eject
	upload *worker // a base backup going to the vault
	// healthAt is when the drive's health was last checked.
	healthAt    time.Time
	healthCheck *worker
	stream      *worker // continuous WAL
	drill       *drillRun
	streamErr   string
	flushed     atomic.Value // postgres.LSN
	lastFlush   atomic.Int64 // unix nanoseconds
	progress    atomic.Uint64
}

type worker struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (w *worker) stop() {
	if w != nil {
		w.cancel()
		<-w.done
	}
}

func (b *inBox) stopAll() {
	b.healthCheck.stop()
	b.drill.stop()
	b.drill = nil
	b.job.stop()
	b.upload.stop()
	b.stream.stop()
	b.job, b.stream, b.upload = nil, nil, nil
}

// spawn runs f in the background; its result is posted back by f itself.
func (a *Appliance) spawn(ctx context.Context, f func(ctx context.Context)) *worker {
	wctx, cancel := context.WithCancel(ctx)
	w := &worker{cancel: cancel, done: make(chan struct{})}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer close(w.done)
		f(wctx)
	}()
	return w
}

// arrived starts identifying a drive that was plugged in.
func (a *Appliance) arrived(ctx context.Context, dev drive.Drive) {
	if a.box != nil {
		a.event("insert", fmt.Sprintf("A second drive (%s) was plugged in while %s is in the box; it is ignored. Take it out.", dev.Name(), a.box.dev.Name()))
		return
	}
	b := &inBox{dev: dev, info: dev.Info(), activity: status.Identifying}
	a.box = b
	b.job = a.spawn(ctx, func(ctx context.Context) {
		dir, err := dev.Mount(ctx, false)
		var id rotation.Identity
		if err == nil {
			id, err = readIdentity(ctx, dir, b.info)
		}
		h := status.Health{Verdict: status.VerdictUnknown, Reasons: []string{"no health check on this box"}}
		if a.cfg.Health != nil {
			h = a.cfg.Health.Check(ctx, dev)
		}
		a.post(ctx, func() { a.identified(ctx, b, dir, id, h, err) })
	})
}

// identified asks the rotation about a drive and starts writing to it if
// it may be written.
func (a *Appliance) identified(ctx context.Context, b *inBox, dir string, id rotation.Identity, h status.Health, err error) {
	b.job = nil
	if a.box != b {
		return // it left meanwhile
	}
	b.health, b.id, b.healthAt = h, id, a.cfg.Now()
	if err != nil {
		b.activity = status.NotWritten
		a.driveProblem(b, "insert", "The box cannot read this drive ("+err.Error()+"). A backup drive must be formatted ext4 and enrolled; ask IT.")
		return
	}
	b.dir, b.mounted = dir, true
	if id.ID != "" && a.key.driveSigning(id) == oldSignedDrive {
		b.oldSigned = true
		a.event("insert", fmt.Sprintf("Drive %s was enrolled before drive identities covered the filesystem and serial number. It is accepted; its identity will be signed again the next time the box writes to it.", id.ID))
	}
	dec := a.placeDrive(b, id)
	if h.Verdict == status.VerdictFailing && dec.Drive != "" {
		detail := "SMART health check: failing"
		if len(h.Reasons) > 0 {
			detail += ": " + h.Reasons[0]
		}
		if d2 := a.decide(rotation.Event{Kind: rotation.Fail, Drive: dec.Drive, Detail: detail}); d2.Kind != rotation.Rejected {
			dec.Write = false
		}
	}
	b.dec = dec
	if !dec.Write {
		b.activity = status.NotWritten
		return
	}
	a.startWriting(ctx, b, "backup when the drive came in")
}

// placeDrive asks the rotation what the drive identified as id is for,
// unless it was already in the box when the service started.
func (a *Appliance) placeDrive(b *inBox, id rotation.Identity) rotation.Decision {
	if a.rot.InBox != "" && a.rot.InBox == id.ID {
		// The service restarted (or the box rebooted) with this drive in:
		// nothing moved, so the rotation is not asked again.
		d, _ := a.rot.Drive(id.ID)
		dec := rotation.Decision{Kind: a.rot.Placed, Drive: d.ID, Generation: d.Generation,
			Write:   a.rot.Placed == rotation.Accepted || (a.rot.Placed == rotation.WrongDrive && !a.policy.Strict),
			Reasons: []string{d.Generation + " was in the box when the service started; backups on it continue."}}
		a.event("insert", dec.Reasons[0])
		return dec
	}
	if a.rot.InBox != "" || a.rot.Stranger != nil {
		// What was in the box left while the service was not running.
		a.decide(rotation.Event{Kind: rotation.Remove})
	}
	return a.decide(rotation.Event{Kind: rotation.Insert, Identity: id, Capacity: b.info.Capacity})
}

// startWriting mounts the drive writable, starts streaming WAL onto it and
// takes a base backup, which is then verified.
func (a *Appliance) startWriting(ctx context.Context, b *inBox, why string) {
	dir, err := b.dev.Mount(ctx, true)
	if err != nil {
		b.activity = status.NotWritten
		a.driveProblem(b, "backup", "The drive cannot be written: "+err.Error())
		return
	}
	b.dir, b.writable = dir, true
	if b.oldSigned {
		a.resign(b)
	}
	a.startStream(ctx, b)
	a.runBackup(ctx, b, why)
}

func (a *Appliance) repoPath(b *inBox) string { return filepath.Join(b.dir, repoDir) }

// startStream streams WAL onto the drive through the drive slot until the
// drive is ejected or pulled.
func (a *Appliance) startStream(ctx context.Context, b *inBox) {
	b.streamErr = ""
	b.stream = a.spawn(ctx, func(ctx context.Context) {
		err := backup.Stream(ctx, backup.StreamOptions{
			DB: a.dbURL, Repo: a.repoPath(b), Slot: a.set.Slot, Recipients: a.Recipients(), Signer: a.key.Signer, Log: a.log,
			OnFlush: func(tli uint32, l postgres.LSN) {
				b.flushed.Store(l)
				b.lastFlush.Store(a.cfg.Now().UnixNano())
				select {
				case a.flushed <- struct{}{}:
				default:
				}
			},
			OnGap: func(stored, restart postgres.LSN, recreated bool) {
				if recreated {
					a.post(ctx, func() { a.slotRecreated(a.runCtx, b, stored, restart) })
				}
			},
		})
		if err != nil && ctx.Err() == nil {
			a.post(ctx, func() {
				b.streamErr = err.Error()
				a.onsets.renew(condStreamStopped, string(b.dec.Drive))
				a.event("wal", "WAL streaming onto the drive stopped: "+err.Error())
			})
		}
	})
}

// slotRecreated answers a replication slot that someone dropped on the
// server: the WAL the server recycled meanwhile is lost, so the drive's
// newest base backup cannot be rolled forward past the gap. A new base
// backup starts a new recoverable window at once.
func (a *Appliance) slotRecreated(ctx context.Context, b *inBox, stored, restart postgres.LSN) {
	msg := fmt.Sprintf("The replication slot was missing on the database server and was created again; WAL from %s to %s is lost.", stored, restart)
	switch {
	case a.box != b || !b.writable || b.ejected:
		a.event("wal", msg)
	case b.job != nil:
		a.event("wal", msg+" The backup under way starts a new recoverable window.")
	default:
		a.event("wal", msg+" Taking a new base backup now.")
		a.runBackup(ctx, b, "the replication slot was dropped on the server")
	}
}

// runBackup takes and verifies a base backup on the drive in the box.
func (a *Appliance) runBackup(ctx context.Context, b *inBox, why string) {
	b.activity, b.problem = status.BackingUp, ""
	b.progress.Store(0)
	drive, gen := string(b.dec.Drive), b.dec.Generation
	// The drive's stream stores the backup's WAL, even when it is still
	// starting (see backup.Options.Streamed); only a stream that stopped
	// with an error leaves the backup to stream its own.
	streamed := b.stream != nil && b.streamErr == ""
	a.event("backup", fmt.Sprintf("Base backup onto %s started (%s).", gen, why))
	b.job = a.spawn(ctx, func(ctx context.Context) {
		rec := status.Backup{Drive: drive, Generation: gen, Start: a.cfg.Now()}
		err := a.takeBackup(ctx, b, &rec, streamed)
		a.post(ctx, func() { a.backupDone(b, rec, err) })
	})
}

// takeBackup takes the backup rec describes and verifies it, filling rec
// in as it goes.
func (a *Appliance) takeBackup(ctx context.Context, b *inBox, rec *status.Backup, streamed bool) error {
	if err := a.makeRoom(ctx, b); err != nil {
		a.log.Warn("retention", "drive", rec.Drive, "err", err)
	}
	bk, err := backup.Take(ctx, backup.Options{DB: a.dbURL, Repo: a.repoPath(b), Recipients: a.Recipients(), Signer: a.key.Signer, Log: a.log, Now: a.cfg.Now,
		Label: "clinicbox " + rec.Generation, Streamed: streamed,
		Progress: func(done, total int64) {
			if total > 0 {
				b.progress.Store(math.Float64bits(min(1, float64(done)/float64(total))))
			}
		}})
	if err != nil {
		return err
	}
	rec.ID, rec.End = bk.ID, a.cfg.Now()
	a.countRows(ctx, b.dec.Drive, bk.ID)
	for _, f := range bk.Files {
		rec.Bytes += f.Size
	}
	a.post(ctx, func() { b.activity = status.Verifying })
	return a.verifyBackup(ctx, b, rec)
}

// verifyBackup reads back the backup rec names and records the verdict.
func (a *Appliance) verifyBackup(ctx context.Context, b *inBox, rec *status.Backup) error {
	repo, err := a.openRepo(b)
	if err != nil {
		return err
	}
	rep, err := repo.Verify(ctx, archive.VerifyOptions{Identities: []age.Identity{a.key.Identity}, Backup: rec.ID, Record: true, Now: a.cfg.Now})
	if err != nil {
		return err
	}
	rec.VerifiedAt, rec.Verified = a.cfg.Now(), status.VerifiedOK
	for _, p := range rep.Problems {
		rec.Problems = append(rec.Problems, p.String())
	}
	if !rep.OK() {
		rec.Verified = status.VerifyFailed
	}
	return nil
}

func (a *Appliance) backupDone(b *inBox, rec status.Backup, err error) {
	b.job = nil
	if errors.Is(err, context.Canceled) {
		return
	}
	if err != nil {
		rec.Verified = status.VerifyFailed
		rec.Problems = append(rec.Problems, err.Error())
		a.driveProblem(b, "backup", "The backup onto "+rec.Generation+" failed: "+err.Error())
	} else if rec.Verified != status.VerifiedOK {
		a.driveProblem(b, "verify", fmt.Sprintf("The backup onto %s did not verify: %v", rec.Generation, rec.Problems))
	} else {
		a.event("verify", fmt.Sprintf("Base backup %s onto %s verified.", rec.ID, rec.Generation))
		if a.box == b {
			a.uploadIfDue(a.runCtx, b, rec.ID)
		}
	}
	a.recordBackup(rec)
	if a.box == b {
		b.activity = status.Streaming
		if b.stream == nil {
			b.activity = status.Idle
		}
		a.maybeDrill(a.runCtx)
	}
}

// eject stops writing, flushes and powers the drive down.
func (a *Appliance) eject(ctx context.Context, who string) error {
	b := a.box
	switch {
	case b == nil:
		return errors.New("there is no drive in the box")
	case b.ejected:
		return errors.New("the drive is already safe to remove")
	case b.activity == status.Ejecting:
		return errors.New("the drive is being ejected")
	}
	if b.job != nil && b.activity != status.Streaming {
		return fmt.Errorf("the drive is busy (%s); wait until the panel shows green", b.activity)
	}
	b.activity = status.Ejecting
	a.event("eject", fmt.Sprintf("Ejecting %s (requested by %s).", nameOf(b), who))
	stream, job, upload, drill := b.stream, b.job, b.upload, b.drill
	b.stream, b.job, b.upload, b.drill = nil, nil, nil, nil
	if drill != nil {
		a.event("drill", "The restore drill of "+drill.gen+" was stopped for the eject; its scratch space is wiped.")
	}
	anchor := a.anchorOn(b)
	b.job = a.spawn(ctx, func(ctx context.Context) {
		drill.stop() // stops its PostgreSQL and removes its scratch directory
		job.stop()
		upload.stop()
		stream.stop() // flushes everything received
		anchorErr := anchor()
		safe, err := b.dev.Eject(ctx)
		a.post(ctx, func() {
			if anchorErr != nil {
				a.event("eject", "The logs' heads were not written to the drive: "+anchorErr.Error())
			}
			b.job = nil
			b.mounted = err == nil && !safe && b.mounted
			if err != nil || !safe {
				b.activity = status.Idle
				a.driveProblem(b, "eject", fmt.Sprintf("The drive could not be ejected safely (%v); do not pull it yet, and press the button again.", err))
			} else {
				b.ejected, b.activity, b.writable = true, status.SafeToRemove, false
				a.event("eject", nameOf(b)+" is safe to remove.")
				a.shipLogsNow()
			}
			if b.goneEjecting {
				a.left(ctx, b.dev)
			}
		})
	})
	return nil
}

func nameOf(b *inBox) string {
	if b.dec.Generation != "" {
		return b.dec.Generation
	}
	return "the drive"
}

// left handles a drive taken out.
func (a *Appliance) left(ctx context.Context, dev drive.Drive) {
	b := a.box
	if b == nil || b.dev.Name() != dev.Name() {
		return
	}
	if b.activity == status.Ejecting && b.job != nil {
		// Ejecting a USB drive ends with the kernel deleting its disk, so
		// the removal can arrive before the eject reports; the eject's
		// result then finishes this.
		b.goneEjecting = true
		return
	}
	a.box = nil
	wasWriting := b.writable && !b.ejected
	b.stopAll()
	if r, ok := dev.(interface{ Release() }); ok {
		r.Release()
	}
	if a.rot.InBox != "" || a.rot.Stranger != nil {
		a.decide(rotation.Event{Kind: rotation.Remove, Safe: b.ejected})
	}
	if wasWriting {
		a.event("remove", nameOf(b)+" was pulled out without pressing the button first. Its backups up to the last flush are kept; the next drive gets a full backup.")
	}
}

// button handles the front panel's button.
func (a *Appliance) button(ctx context.Context, p Button) {
	switch p {
	case LongPress:
		a.openConsent("front desk (button)", a.cfg.SupportWindow)
	case ResetPassword:
		pages := a.web.Load()
		if pages == nil {
			return
		}
		if err := pages.ResetPassword("front desk (button held 10 s)"); err != nil {
			a.event("password", "Holding the button did not clear the page's password: "+err.Error())
			return
		}
		a.event("password", "The page's password was cleared at the box (button held 10 s). Set a new one on the box's page within 10 minutes.")
	case Ack:
		if pages := a.web.Load(); pages != nil && pages.OpenSetup("front desk (button)") {
			a.event("password", "Setup open: set the page's password on the box's page within 10 minutes.")
		}
		st := a.Status()
		if len(st.Conditions) > 0 && rotation.Kind(st.Conditions[0].Name) == rotation.SwapDue {
			if err := a.eject(ctx, "front desk (button)"); err != nil {
				a.event("eject", "Button pressed: "+err.Error())
			}
			return
		}
		a.acknowledge()
	}
}

// driveProblem records what failed on the drive in the box: shown as a
// failure, logged as an event of kind, and a new occurrence even if the
// last problem on the drive was acknowledged and never cleared.
func (a *Appliance) driveProblem(b *inBox, kind, msg string) {
	b.problem = msg
	a.onsets.renew(condBackupFailed, string(b.dec.Drive))
	a.event(kind, msg)
}

func (a *Appliance) acknowledge() {
	st := a.Status()
	for _, c := range st.Conditions {
		if c.Severity >= status.Attention && !c.Acknowledged {
			a.onsets.ack(c)
			a.event("acknowledge", "Acknowledged: "+c.Message)
			return
		}
	}
}

func (a *Appliance) openConsent(who string, d time.Duration) {
	a.consent = a.cfg.Now().Add(d)
	a.event("support", fmt.Sprintf("Remote support may act on the box until %s (opened by %s).", a.consent.Format("15:04"), who))
}

// healthEvery is how often the drive in the box is checked again.
const healthEvery = 6 * time.Hour

// recheckHealth checks the drive in the box again; a drive that starts
// failing is taken out of the rotation and no longer written.
func (a *Appliance) recheckHealth(ctx context.Context) {
	b := a.box
	if b == nil || a.cfg.Health == nil || b.healthCheck != nil || b.ejected || b.dec.Drive == "" || a.cfg.Now().Sub(b.healthAt) < healthEvery {
		return
	}
	b.healthAt = a.cfg.Now()
	b.healthCheck = a.spawn(ctx, func(ctx context.Context) {
		h := a.cfg.Health.Check(ctx, b.dev)
		a.post(ctx, func() {
			b.healthCheck = nil
			if a.box != b {
				return
			}
			was := b.health.Verdict
			b.health = h
			if h.Verdict == status.VerdictFailing && was != status.VerdictFailing {
				a.decide(rotation.Event{Kind: rotation.Fail, Drive: b.dec.Drive, Detail: "SMART health check: failing: " + first(h.Reasons)})
				b.job.stop()
				b.stream.stop()
				b.job, b.stream, b.writable, b.activity = nil, nil, false, status.NotWritten
			}
		})
	})
}

// periodic runs the scheduled work: health checks, the disk survey and
// the nightly backup.
func (a *Appliance) periodic(ctx context.Context) {
	a.recheckHealth(ctx)
	a.maybeDrill(ctx)
	a.surveyDisks(ctx)
	b := a.box
	// A drill running holds the nightly backup back until it ends.
	if b == nil || !b.writable || b.ejected || b.job != nil || b.drill != nil || b.dec.Drive == "" || !a.cfg.ClockTrusted() {
		return
	}
	loc := a.policy.Calendar.Location
	now := a.cfg.Now().In(loc)
	today := rotation.DateOf(now)
	at := time.Date(now.Year(), now.Month(), now.Day(), a.set.NightlyAt.Hour, a.set.NightlyAt.Minute, 0, 0, loc)
	if now.Before(at) || a.book.Nightly[b.dec.Drive] == today {
		return
	}
	// A drive that came in today after the nightly time already got its
	// backup on insert.
	if d, ok := a.rot.Drive(b.dec.Drive); ok && d.InsertedAt.After(at) {
		a.book.Nightly[b.dec.Drive] = today
		return
	}
	a.book.Nightly[b.dec.Drive] = today
	a.saveBook()
	if b.stream == nil {
		a.startStream(ctx, b)
	}
	a.runBackup(ctx, b, "nightly")
}
