package fault

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance"
	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
	"github.com/clinicbox/clinicbox/drivers/usb/usbtest"
	"github.com/clinicbox/clinicbox/rotation"
	"golang.org/x/sys/unix"
)

// The kills that need the service's clock moved to the swap and to the
// nightly backup.
const (
	inNightly = "SIGKILL of cmd/clinicbox during the nightly backup its clock started"
	inEject   = "SIGKILL of cmd/clinicbox during an eject"
	inSwap    = "SIGKILL of cmd/clinicbox during a drive swap"
)

// clockMoved is the line cmd/clinicbox logs when it took a new time from
// its -clock-file.
const clockMoved = "clock moved"

// useClock makes the service run on a clock file starting at start
// (cmd/clinicbox's -clock-file, for tests and demos only).
func (s *boxService) useClock(start time.Time) {
	s.t.Helper()
	s.clockFile = filepath.Join(filepath.Dir(s.setPath), "clock")
	s.args = append(s.args, "-clock-file", s.clockFile)
	s.writeClock(start)
}

// writeClock writes t to the clock file (temp file and rename: the
// service never reads half a time).
func (s *boxService) writeClock(t time.Time) {
	s.t.Helper()
	tmp := s.clockFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(t.Format(time.RFC3339Nano)+"\n"), 0o600); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Rename(tmp, s.clockFile); err != nil {
		s.t.Fatal(err)
	}
	s.clockAt, s.clockSet = t, time.Now()
}

// now is the service's time: the last time written, run on since.
func (s *boxService) now() time.Time { return s.clockAt.Add(time.Since(s.clockSet)) }

// setClock moves the running service's clock to t and waits until the
// service has logged that it took it.
func (s *boxService) setClock(t time.Time) {
	s.t.Helper()
	before := strings.Count(s.proc.Output(), clockMoved)
	s.writeClock(t)
	s.poll("the service to take the time "+t.Format(time.RFC3339), time.Minute, func() bool {
		return strings.Count(s.proc.Output(), clockMoved) > before
	})
}

// SIGKILL of cmd/clinicbox, run on a clock file the test moves, during
// the nightly backup that clock starts, during an eject, and once during
// a drive swap (at a random stage: the eject of the old drive, the change
// of drives while the service is down, the new drive's first backup).
// After every kill the drive's repository verifies with no WAL gap and no
// backup marked good that does not verify, and the restarted service
// streams again; after the swap both drives' repositories do, and a
// restore from the new drive holds every commit reported flushed.
func TestSIGKILLServiceOnClock(t *testing.T) {
	s := newBoxService(t, 64<<20) // skips without loop devices
	c := pgtest.New(t, pgtest.Options{})
	ctx := context.Background()
	if err := c.ClinicInit(ctx, 500); err != nil {
		t.Fatal(err)
	}
	k := newKey(t)
	monday := time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)
	s.useClock(monday)
	s.writeSettings(fmt.Sprintf(`{"database": {"url": %q}, "recipients": [%q], "rotation": {"time_zone": "UTC", "swap_at": "08:00"}}`, c.URL(), k.recipient))
	wctx, stopClinic := context.WithCancel(ctx)
	defer stopClinic()
	go c.ClinicWorkload(wctx, 10, 500)
	led := startLedger(t, c, 500)

	s.start()
	// Two drives, so that a swap comes due: Son, then Father, which
	// stays in the box for the rounds.
	s.enroll()
	son := s.img
	s.changeDrive(s.newImage("father.img", 64<<20))
	s.enroll()
	b := &box{t: t, c: c, dir: s.repo(), k: k}
	n := rounds(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("%d rounds, seed %d", n, seed)
	rng := rand.New(rand.NewPCG(seed, 4))
	day := monday
	for r := range n {
		target := []string{inNightly, inEject}[r%2]
		t.Run(fmt.Sprintf("round%03d", r), func(t *testing.T) {
			s.t, b.t = t, t
			defer s.logOnFailure(b)
			var hit []string
			if target == inNightly {
				hit = s.killInNightly(day, rng)
				day = day.AddDate(0, 0, 1)
			} else {
				hit = s.killInEject(rng)
			}
			t.Logf("aimed at %q; hit %q", target, hit)
			s.checkDrive(b)
			s.restart(b, hit)
		})
		s.t, b.t = t, t
		if t.Failed() {
			return
		}
	}
	t.Run("swap", func(t *testing.T) {
		s.t, b.t = t, t
		defer s.logOnFailure(b)
		s.killInSwap(b, day, son, rng)
	})
	s.t, b.t = t, t
	if t.Failed() {
		return
	}
	hit := s.killAfter(time.Duration(rng.Int64N(int64(3 * time.Second))))
	b.checkAfterKill(t)
	for _, h := range hit {
		newTry(t, h).Outcome = "the drive's repository verifies with no WAL gap and no backup marked good that does not verify; restored to latest (below)"
	}
	b.restoreAfterLastKill(t, led, stopClinic, "restore to latest after the SIGKILLs of cmd/clinicbox on its clock")
}

// enroll waits for the drive in the box to be offered, enrolls it and
// waits for its first backup, verified, and streaming.
func (s *boxService) enroll() *status.Status {
	s.t.Helper()
	s.wait("the drive offered for enrollment", 2*time.Minute, func(st *status.Status) bool {
		return st.InBox != nil && st.InBox.Decision == string(rotation.UnknownDrive)
	})
	s.act(appliance.ActEnroll, "")
	return s.wait("the enrolled drive backed up, verified and streaming", 2*time.Minute, func(st *status.Status) bool {
		return streaming(st, 0) && st.InBox.Generation != "" && verifiedOK(st) > 0
	})
}

func (s *boxService) logOnFailure(b *box) {
	if s.t.Failed() {
		s.t.Logf("the service's log:\n%s\nthe drive:\n%s", s.keyLines(), repoListing(b.dir))
	}
}

// killInNightly moves the clock to day's nightly backup (21:00) and kills
// the service at a random moment of the backup it starts.
func (s *boxService) killInNightly(day time.Time, rng *rand.Rand) []string {
	s.t.Helper()
	evening := time.Date(day.Year(), day.Month(), day.Day(), 21, 0, 0, 0, time.UTC)
	if s.now().After(evening) {
		s.t.Fatalf("the clock is at %s, past the evening of %s", s.now(), day.Format(time.DateOnly))
	}
	before := len(s.status().Backups)
	s.setClock(evening)
	// A small backup can be over between two reads of the status.
	s.wait("the nightly backup", 2*time.Minute, func(st *status.Status) bool {
		return activity(status.BackingUp)(st) || activity(status.Verifying)(st) || len(st.Backups) > before
	})
	hit := s.killAfter(time.Duration(rng.Int64N(int64(800 * time.Millisecond))))
	return nightly(hit)
}

// nightly renames the base-backup row of a kill: the backup was the
// nightly one.
func nightly(hit []string) []string {
	for i, h := range hit {
		if h == inBackup {
			hit[i] = inNightly
		}
	}
	return hit
}

// killInEject ejects the drive through the page and kills the service
// at a random moment of the eject. The drive stays attached (a loop
// device cannot be pulled), so the restarted service takes it back.
func (s *boxService) killInEject(rng *rand.Rand) []string {
	s.t.Helper()
	s.wait("streaming", 2*time.Minute, func(st *status.Status) bool { return streaming(st, 0) })
	s.act(appliance.ActEject, "")
	return s.killAfter(time.Duration(rng.Int64N(int64(300 * time.Millisecond))))
}

// killInSwap moves the clock to the next swap, ejects the drive (the
// button's eject on "swap due") and kills the service at one of the
// swap's stages, then finishes the swap with the restarted service: the
// old drive out, the expected one (next, an image) in, backed up and
// streaming.
func (s *boxService) killInSwap(b *box, day time.Time, next string, rng *rand.Rand) {
	s.t.Helper()
	s.setClock(time.Date(day.Year(), day.Month(), day.Day(), 8, 0, 30, 0, time.UTC))
	swapAt := s.now()
	// Not only at the head of the list: once the clock has run a week past
	// the last swap, "drive overdue" leads.
	s.wait("swap due", 2*time.Minute, func(st *status.Status) bool {
		_, ok := condition(*st, string(rotation.SwapDue), "")
		return ok
	})
	oldImg := s.img
	stage := rng.IntN(3)
	s.act(appliance.ActEject, "")
	if stage == 0 {
		hit := s.killAfter(time.Duration(rng.Int64N(int64(300 * time.Millisecond))))
		s.t.Logf("killed during the swap's eject; hit %q", hit)
		s.checkDrive(b)
		s.restart(b, nil)
		s.act(appliance.ActEject, "")
	}
	s.wait("safe to remove", 2*time.Minute, activity(status.SafeToRemove))
	if stage == 1 {
		s.kill(0)
		s.t.Logf("killed with the old drive safe to remove; the drives change while the service is down")
	}
	if stage == 1 {
		s.loop.Detach() // the service is down: nothing to wait for
	} else {
		s.pull()
	}
	stint, err := b.c.CurrentLSN(context.Background(), false)
	if err != nil {
		s.t.Fatal(err)
	}
	b.stint = stint // the drive coming in was away since its last stint
	s.plug(next)
	if stage == 1 {
		s.start()
	}
	if stage == 2 {
		s.wait("the backup on insert", 2*time.Minute, activity(status.BackingUp))
		hit := s.killAfter(time.Duration(rng.Int64N(int64(800 * time.Millisecond))))
		s.t.Logf("killed during the backup on insert; hit %q", hit)
		s.checkDrive(b)
		s.start()
	}
	s.finishSwap(b, oldImg, swapAt)
}

// finishSwap waits for a backup of the drive in the box taken since the
// swap, verified, and streaming, and checks both drives.
func (s *boxService) finishSwap(b *box, oldImg string, swapAt time.Time) {
	s.t.Helper()
	tr := newTry(s.t, inSwap)
	s.waitBackup("the new drive backed up since the swap", swapAt)
	s.checkDrive(b)
	s.checkOldDrive(b, oldImg)
	tr.Outcome = "both drives' repositories verify with no WAL gap and no backup marked good that does not verify; the restarted service took the expected drive, backed it up and streams"
}

// changeDrive ejects the drive in the box through the page, pulls it
// once it is safe to remove and puts in img.
func (s *boxService) changeDrive(img string) {
	s.t.Helper()
	s.act(appliance.ActEject, "")
	s.wait("safe to remove", 2*time.Minute, activity(status.SafeToRemove))
	s.pull()
	s.plug(img)
}

// pull detaches the drive in the box and waits until the running service
// has seen it go. A loop device stays in place when its image is
// detached, and the next image attached takes the same device: plugged
// before the service handled the detach, it would look like the same
// disk changing size (a person takes seconds between the two).
func (s *boxService) pull() {
	s.t.Helper()
	s.loop.Detach()
	s.wait("the drive out", 2*time.Minute, func(st *status.Status) bool { return st.InBox == nil })
}

// waitBackup waits for a verified backup of the drive in the box that
// started at or after since (on the service's clock), and for streaming.
func (s *boxService) waitBackup(what string, since time.Time) {
	s.t.Helper()
	s.wait(what, 2*time.Minute, func(st *status.Status) bool {
		if !streaming(st, 0) {
			return false
		}
		for _, bk := range st.Backups {
			if bk.Generation == st.InBox.Generation && bk.Verified == status.VerifiedOK && !bk.Start.Before(since) {
				return true
			}
		}
		return false
	})
}

// checkOldDrive checks the old drive's repository after moving its image
// away from the directory the service takes drives from.
func (s *boxService) checkOldDrive(b *box, img string) {
	s.t.Helper()
	away := filepath.Join(s.t.TempDir(), "old.img")
	if err := os.Rename(img, away); err != nil {
		s.t.Fatal(err)
	}
	checkImage(s.t, usbtest.AttachLoop(s.t, away), &box{c: b.c, k: b.k}) // in the box since its enrollment: every gap counts
}

// checkDrive checks the repository on the drive in the box after a kill:
// where the killed service left it mounted, or, when an eject had
// unmounted it, mounted read-only by the test.
func (s *boxService) checkDrive(b *box) {
	s.t.Helper()
	if _, err := os.Stat(filepath.Join(s.repo(), "clinicbox-repo.json")); err == nil {
		b.dir = s.repo()
		b.checkAfterKill(s.t)
		return
	}
	checkImage(s.t, s.loop, b)
}

// checkImage mounts the drive read-only and checks its repository.
func checkImage(t *testing.T, l *usbtest.Loop, b *box) {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount(l.Dev, dir, "ext4", unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("mount %s: %v", l.Dev, err)
	}
	defer unix.Unmount(dir, 0)
	(&box{t: t, c: b.c, dir: filepath.Join(dir, "clinicbox"), k: b.k, stint: b.stint}).checkAfterKill(t)
}
