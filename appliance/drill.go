package appliance

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/durable"
	"github.com/clinicbox/clinicbox/appliance/restore"
	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgbin"
	"github.com/clinicbox/clinicbox/drivers/tmpfs"
	"github.com/clinicbox/clinicbox/rotation"
)

// DrillConfig is what the box needs to run restore drills itself. A box
// without it (no PostgreSQL in the image) refuses drills.
type DrillConfig struct {
	// FetchProgram is a program with the wal-fetch subcommand, which
	// the drill's PostgreSQL runs as its restore_command.
	FetchProgram string
	// Search finds the PostgreSQL programs of a server's major version
	// (15, 17) among those the box carries.
	Search pgbin.Search
	// Scratch is the box's own parent of drill scratch directories (on
	// /perm, whose filesystem has the encrypt feature), used when the
	// drive's filesystem cannot encrypt; empty means none.
	Scratch string
	// RAMScratch is where the box mounts a drill's scratch in memory
	// (tmpfs) when no file system can encrypt one (a kernel without
	// fscrypt): only for a database that fits the memory the box can
	// spare (see ramBudget). Empty means never: such a drill is not run.
	RAMScratch string
	// Memory reads the kernel's memory figures; nil means /proc/meminfo.
	Memory func() (tmpfs.Memory, error)
}

// Names of the drill's conditions. CondDrilling, shown while a drill
// runs, is exported for those who wait for a drill to end (the demo's
// autopilot).
const (
	CondDrilling    = "drilling"
	condDrillFailed = "drill failed"
	condDrillNotRun = "drill not run"
)

const (
	// keepDrills is how many drills the book remembers.
	keepDrills = 60
	// drillSwapMargin keeps drills from starting shortly before the
	// morning swap, when the drive must be free to leave.
	drillSwapMargin = 2 * time.Hour
	// pointInTimeEvery is how often a drill restores a random moment
	// instead of the latest.
	pointInTimeEvery = 30 * 24 * time.Hour
	// drillRetry is how soon a failed drill is tried again.
	drillRetry = 20 * time.Hour
)

// drillRun is a drill running on the drive in the box.
type drillRun struct {
	w       *worker
	drive   rotation.DriveID
	gen     string
	started time.Time
}

func (r *drillRun) stop() {
	if r != nil {
		r.w.stop()
	}
}

// maybeDrill starts a scheduled drill of the drive in the box when one is
// due and the drive is idle.
func (a *Appliance) maybeDrill(ctx context.Context) {
	b := a.box
	if a.cfg.Drills == nil || b == nil || b.drill != nil || !a.drillIdle(b) {
		return
	}
	ds, err := a.set.DrillSettings()
	if err != nil || ds.Off {
		return
	}
	d, _ := a.rot.Drive(b.dec.Drive)
	now := a.cfg.Now()
	last, lastPIT, lastOK := a.lastDrills(b.dec.Drive)
	today := rotation.DateOf(now.In(a.policy.Calendar.Location))
	due, why := drillDue(drillHistory{last: last, lastOK: lastOK, enrolled: d.EnrolledAt}, ds, a.book.Nightly[b.dec.Drive] == today, now)
	if !due {
		return
	}
	// Once a month, a random moment instead of the latest (not in a
	// drive's first month: its window is short).
	pit := why != whyEnrolled && now.Sub(laterOf(lastPIT, d.EnrolledAt)) >= pointInTimeEvery
	a.startDrill(ctx, b, why, drillAim{random: pit})
}

func laterOf(x, y time.Time) time.Time {
	if x.After(y) {
		return x
	}
	return y
}

// drillIdle reports whether the drive in the box may be drilled now: its
// latest backup verified, nothing else running on it, and the morning
// swap not near.
func (a *Appliance) drillIdle(b *inBox) bool {
	if !b.writable || b.ejected || !a.cfg.ClockTrusted() || !a.swapReady(b) {
		return false
	}
	d, ok := a.rot.Drive(b.dec.Drive)
	if !ok {
		return false
	}
	dueAt := a.policy.Calendar.SwapDueAt(d.InsertedAt)
	return dueAt.IsZero() || a.cfg.Now().Before(dueAt.Add(-drillSwapMargin))
}

// drillHistory is what the schedule needs to know about a drive's drills.
type drillHistory struct {
	last     time.Time // the last drill's time; zero if never
	lastOK   bool
	enrolled time.Time
}

const whyEnrolled = "the drive was enrolled"

// drillDue decides whether a drive is due for a drill and says why. A
// drive enrolled since its last drill is drilled at once; otherwise a
// drill waits for the night's backup (nightlyDone) and comes every
// ds.Every(), or the next night after a failure.
func drillDue(h drillHistory, ds DrillSettings, nightlyDone bool, now time.Time) (bool, string) {
	if *ds.AfterEnrollment && (h.last.IsZero() || h.enrolled.After(h.last)) {
		return true, whyEnrolled
	}
	switch {
	case !nightlyDone:
		return false, ""
	case h.last.IsZero():
		return true, "the drive has never been drilled"
	case !h.lastOK && now.Sub(h.last) >= drillRetry:
		return true, "the last drill failed"
	case now.Sub(h.last) >= ds.Every()-12*time.Hour:
		// Half a day early, so that a weekly drill stays on its night.
		return true, fmt.Sprintf("scheduled every %d days", ds.EveryDays)
	}
	return false, ""
}

// lastDrills returns when the drive was last drilled, last drilled to a
// moment before the latest, and whether the last drill passed.
func (a *Appliance) lastDrills(id rotation.DriveID) (last, pointInTime time.Time, ok bool) {
	for _, d := range a.book.Drills {
		if d.Drive != string(id) {
			continue
		}
		if d.Time.After(last) {
			last, ok = d.Time, d.OK
		}
		if d.Target != "" && d.Target != (restore.Target{}).String() && d.Time.After(pointInTime) {
			pointInTime = d.Time
		}
	}
	return last, pointInTime, ok
}

// drillNow runs a drill at someone's request: to the latest, or to the
// moment at names (RFC 3339), which must lie in the drive's recoverable
// window. A drill to a moment may restore an older backup, so it needs
// no verified backup since the drive came in: after a verification that
// failed (the verifier reads all the drive's WAL), it shows what still
// restores.
func (a *Appliance) drillNow(who, at string) error {
	b := a.box
	switch {
	case a.cfg.Drills == nil:
		return errors.New("restore drills need PostgreSQL, which this box does not carry: they run on the vault (trusted standby) or with 'clinicctl drill' on a PC")
	case b == nil:
		return errors.New("there is no drive in the box")
	case b.drill != nil:
		return errors.New("a restore drill is already running")
	case !b.writable || b.ejected || b.dec.Drive == "":
		return errors.New("the drive in the box is not in use for backups; only a drive of the rotation is drilled")
	case b.job != nil:
		return fmt.Errorf("the box is busy (%s); try again when it is done", b.activity)
	case at == "" && !a.swapReady(b):
		return errors.New("the drive has no verified backup since it came in; take a backup first, or ask for a drill to a moment before it")
	}
	target, err := a.chosenMoment(b, at)
	if err != nil {
		return err
	}
	why := "requested by " + who
	if !target.Latest() {
		why += ", to " + target.String()
	}
	a.startDrill(a.runCtx, b, why, drillAim{target: target})
	return nil
}

// drillAim is what a drill restores to: target (the zero Target: the
// latest), or with random a random moment of the drive's window.
type drillAim struct {
	random bool
	target restore.Target
}

// chosenMoment reads the moment someone asked a drill to restore to: ""
// is the latest; anything else must be an RFC 3339 time inside the
// drive's recoverable window.
func (a *Appliance) chosenMoment(b *inBox, at string) (restore.Target, error) {
	if at == "" {
		return restore.Target{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return restore.Target{}, fmt.Errorf("give the moment to restore to as an RFC 3339 time, like %s, or nothing for the latest", a.cfg.Now().UTC().Format(time.RFC3339))
	}
	repo, err := a.openRepo(b)
	if err != nil {
		return restore.Target{}, err
	}
	sum, err := repo.Summarize()
	if err != nil {
		return restore.Target{}, fmt.Errorf("the drive's backups cannot be listed: %v", err)
	}
	target := restore.Target{Time: t}
	if _, _, err := restore.Choose(sum, target); err != nil {
		return restore.Target{}, fmt.Errorf("%s is outside the drive's recoverable window (%s); choose a moment inside it", t.UTC().Format(time.RFC3339), windowSpan(sum.Windows))
	}
	return target, nil
}

// windowSpan says from when to when the drive can be restored, in words.
func windowSpan(ws []archive.Window) string {
	if len(ws) == 0 {
		return "it holds no backup with the WAL it needs"
	}
	from, to := ws[0].FromTime, ws[0].ToTime
	for _, w := range ws[1:] {
		from, to = earlierOf(from, w.FromTime), laterOf(to, w.ToTime)
	}
	return fmt.Sprintf("from %s to %s", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
}

func earlierOf(x, y time.Time) time.Time {
	if x.Before(y) {
		return x
	}
	return y
}

// startDrill restores the drive's backup to what aim says into scratch
// space in the background.
func (a *Appliance) startDrill(ctx context.Context, b *inBox, why string, aim drillAim) {
	run := &drillRun{drive: b.dec.Drive, gen: b.dec.Generation, started: a.cfg.Now()}
	counts := a.book.RowCounts[b.dec.Drive]
	a.event("drill", fmt.Sprintf("Restore drill of %s started (%s).", run.gen, why))
	run.w = a.spawn(ctx, func(ctx context.Context) {
		rep, target, err := a.drillDrive(ctx, b, counts, aim)
		if ctx.Err() != nil {
			return // stopped (an eject, the drive pulled, shutdown): nothing to record
		}
		a.post(ctx, func() { a.drillDone(b, run, rep, target, err) })
	})
	b.drill = run
}

// drillDrive runs the drill. An error means it could not run at all.
func (a *Appliance) drillDrive(ctx context.Context, b *inBox, counts rowCounts, aim drillAim) (*restore.Report, restore.Target, error) {
	target := aim.target
	repo, err := a.openRepo(b)
	if err != nil {
		return nil, target, err
	}
	if _, err := restore.FindServer(ctx, repo, a.cfg.Drills.Search); err != nil {
		major := repo.Info.ServerVersion / 10000
		return nil, target, fmt.Errorf("the database server runs PostgreSQL %d, and this box carries no PostgreSQL %d to restore it with: %w", major, major, err)
	}
	if aim.random {
		target = randomMoment(repo)
	}
	ds, _ := a.set.DrillSettings()
	checks, err := ds.checks()
	if err != nil {
		return nil, target, err
	}
	scratch, err := a.drillScratch(b, repo, target)
	if err != nil {
		return nil, target, err
	}
	defer func() {
		if err := scratch.remove(); err != nil {
			a.log.Error("drill scratch not removed", "err", err)
		}
	}()
	rep, err := restore.Drill(ctx, restore.DrillOptions{Repo: repo, Identities: a.key.Identities(), IdentityFile: a.path("box.key"),
		Signer: a.key.Signer, Target: target, Checks: counts.checks(checks), FetchProgram: a.cfg.Drills.FetchProgram,
		Save: true, ScratchParent: scratch.path, ScratchInRAM: scratch.inRAM, Search: a.cfg.Drills.Search})
	return rep, target, err
}

// randomMoment picks a moment in the newest recoverable window; the
// latest when the window is too short to pick from.
func randomMoment(repo *archive.Repo) restore.Target {
	sum, err := repo.Summarize()
	if err != nil || len(sum.Windows) == 0 {
		return restore.Target{}
	}
	w := sum.Windows[len(sum.Windows)-1]
	span := w.ToTime.Sub(w.FromTime)
	if span < time.Minute {
		return restore.Target{}
	}
	return restore.Target{Time: w.FromTime.Add(time.Duration(rand.Int64N(int64(span))))}
}

// drillDone records a drill's result in the book and the box's drills/,
// and makes a failure a condition.
func (a *Appliance) drillDone(b *inBox, run *drillRun, rep *restore.Report, target restore.Target, err error) {
	if b.drill == run {
		b.drill = nil
	}
	d := status.Drill{Time: a.cfg.Now(), Drive: string(run.drive), Target: target.String()}
	if rep != nil {
		d.OK, d.RTO, d.RPO, d.Report, d.Server = rep.OK, rep.RTO, rep.RPO, rep.Name(), rep.Server
		d.InRAM, d.ServerPeakRSS, d.BoxPeakRSS = rep.Scratch == "memory", rep.ServerPeakRSS, rep.ProgramPeakRSS
		d.Problems = drillProblems(rep)
		if serr := a.saveDrillReport(rep); serr != nil {
			a.log.Error("drill report not kept on the box", "err", serr)
		}
	}
	if err != nil {
		var nr *notRunError
		d.OK, d.NotRun = false, errors.As(err, &nr)
		d.Problems = append(d.Problems, err.Error())
	}
	a.book.Drills = append(a.book.Drills, d)
	if n := len(a.book.Drills); n > keepDrills {
		a.book.Drills = a.book.Drills[n-keepDrills:]
	}
	switch {
	case d.OK:
		a.event("drill", fmt.Sprintf("Restore drill of %s passed: a usable database in %.0f s, %.0f s of changes missing.", run.gen, d.RTO, d.RPO))
	case d.NotRun:
		a.onsets.renew(condDrillNotRun, string(run.drive))
		a.event("drill", fmt.Sprintf("Restore drill of %s NOT RUN: %s", run.gen, first(d.Problems)))
	default:
		a.onsets.renew(condDrillFailed, string(run.drive))
		a.event("drill", fmt.Sprintf("Restore drill of %s FAILED: %s", run.gen, first(d.Problems)))
	}
	a.saveBook()
}

// drillConditions are a running drill and each drive's failed last drill.
func (a *Appliance) drillConditions() []status.Condition {
	var out []status.Condition
	if b := a.box; b != nil && b.drill != nil {
		out = append(out, status.Condition{Name: CondDrilling, Severity: status.Busy, Drive: string(b.drill.drive),
			Message: "Proving that the backups on " + b.drill.gen + " restore (restore drill). The drive may be ejected at any time."})
	}
	for _, d := range a.rot.Drives {
		if d.Status == rotation.Retired {
			continue
		}
		last, ok := a.latestDrill(d.ID)
		switch {
		case !ok || last.OK:
		case last.NotRun:
			out = append(out, status.Condition{Name: condDrillNotRun, Severity: status.Attention, Drive: string(d.ID), Since: last.Time,
				Message: fmt.Sprintf("The box could not run the restore drill of %s: %s. Nobody knows whether its backups restore; call IT.", d.Generation, first(last.Problems))})
		default:
			out = append(out, status.Condition{Name: condDrillFailed, Severity: status.Failure, Drive: string(d.ID), Since: last.Time,
				Message: fmt.Sprintf("The restore drill of %s failed: %s. Its backups may not restore; call IT.", d.Generation, first(last.Problems))})
		}
	}
	return out
}

func (a *Appliance) latestDrill(id rotation.DriveID) (status.Drill, bool) {
	for i := len(a.book.Drills) - 1; i >= 0; i-- {
		if d := a.book.Drills[i]; d.Drive == string(id) {
			return d, true
		}
	}
	return status.Drill{}, false
}

// saveDrillReport keeps the signed report on the box too, next to its
// state, so the evidence stays when the drive goes offsite.
func (a *Appliance) saveDrillReport(rep *restore.Report) error {
	files, err := rep.Files()
	if err != nil {
		return err
	}
	dir := a.path("drills")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, b := range files {
		if err := durable.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return err
		}
	}
	return pruneDrillReports(dir, 2*keepDrills)
}

// pruneDrillReports keeps the newest keep files (their names sort by time).
func pruneDrillReports(dir string, keep int) error {
	names, err := filepath.Glob(filepath.Join(dir, "drill-*"))
	if err != nil || len(names) <= keep {
		return err
	}
	for _, n := range names[:len(names)-keep] {
		if err := os.Remove(n); err != nil {
			return err
		}
	}
	return nil
}
