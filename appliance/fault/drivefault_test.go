package fault

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
	"golang.org/x/sys/unix"
)

// bulkWAL writes a few MB of poorly compressible WAL.
func bulkWAL(t *testing.T, c *pgtest.Cluster, rows int) {
	t.Helper()
	c.MustExec(t, "CREATE TABLE IF NOT EXISTS fault_bulk (id bigint, v text)",
		fmt.Sprintf("INSERT INTO fault_bulk SELECT g, md5(g::text) || md5(random()::text) FROM generate_series(1, %d) g", rows))
}

// waitExit waits for a process that must stop on its own.
func waitExit(t *testing.T, p *Process, what string) {
	t.Helper()
	waitUntil(t, what+" to end", 3*time.Minute, func() bool {
		select {
		case <-p.Done():
			return true
		default:
			return false
		}
	}, p.Progress)
}

// firstLine returns the first output line containing s, or "".
func firstLine(out, s string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// A drive pulled while clinicctl stream writes to it: the stream reports
// the I/O error, and the repository on the drive, plugged in again, still
// verifies and holds all WAL reported flushed.
func TestDrivePulledMidWrite(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{})
	startLedger(t, c, 300)
	d := newDrive(t, 256<<20)
	b := &box{t: t, c: c, dir: filepath.Join(d.dir, "repo"), k: newKey(t)}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	for i := range rounds(t) {
		t.Run(fmt.Sprint("pull", i), func(t *testing.T) {
			tr := newTry(t, "drive pulled while clinicctl stream writes to it")
			b.t = t
			b.startStream()
			time.Sleep(time.Duration(rng.Int64N(int64(2 * time.Second)))) // when the drive is pulled: the fault
			d.cutPower()                                                  // every further I/O fails, as on a pulled drive
			waitUntil(t, "the stream to report the I/O error", time.Minute, func() bool {
				return strings.Contains(b.stream.Output(), "input/output error")
			}, b.stream.Progress)
			said := firstLine(b.stream.Output(), "input/output error")
			b.stream.Kill()
			b.stream = nil
			claimed := slotFlushed(t, c, slot)
			d.pull()
			d.attach() // plugged in again
			b.checkAfterKill(t)
			stored := storedEnd(t, b.dir, b.k)
			if tr.Lost = lostWAL(claimed, stored); tr.Lost != "" {
				t.Error(tr.Lost)
			}
			tr.Outcome = "stream reported the I/O error (" + shorten(said) + "); plugged in again, the repository verifies and holds all WAL reported flushed"
		})
	}
}

// Power cut while clinicctl stream (and sometimes backup) write: every
// process dies and what the filesystem had not written is dropped. After
// the drive is mounted again, the repository verifies, lists only backups
// that verify, and holds all WAL reported flushed.
func TestPowerLoss(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{})
	startLedger(t, c, 300)
	d := newDrive(t, 256<<20)
	b := &box{t: t, c: c, dir: filepath.Join(d.dir, "repo"), k: newKey(t)}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 4))
	for i := range rounds(t) {
		withBackup := i%2 == 1
		t.Run(fmt.Sprintf("cut%d-backup=%v", i, withBackup), func(t *testing.T) {
			fault := "power cut while clinicctl stream writes"
			if withBackup {
				fault = "power cut while clinicctl stream and backup write"
			}
			tr := newTry(t, fault)
			b.t = t
			b.startStream()
			procs := []*Process{b.stream}
			if withBackup {
				procs = append(procs, b.start("backup"))
			}
			time.Sleep(time.Duration(rng.Int64N(int64(3 * time.Second)))) // when the power goes: the fault
			for _, p := range procs {
				p.Kill()
			}
			d.cutPower()
			b.stream = nil
			claimed := slotFlushed(t, c, slot)
			d.unmount()
			if err := unix.Mount(d.loop.Dev, d.dir, "ext4", unix.MS_NOATIME, d.opts); err != nil {
				t.Fatalf("mount after power cut: %v", err)
			}
			b.checkAfterKill(t)
			stored := storedEnd(t, b.dir, b.k)
			if tr.Lost = lostWAL(claimed, stored); tr.Lost != "" {
				t.Error(tr.Lost)
			}
			tr.Outcome = "mounted again: repository verifies, no WAL gap, only verifying backups listed, streaming resumed"
		})
	}
}

// A drive that fills up: backup and stream stop with a clear disk-full
// error, nothing is listed as a backup that is not one, and once space is
// freed streaming resumes with no gap.
func TestDiskFull(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{})
	if err := c.ClinicInit(context.Background(), 5000); err != nil {
		t.Fatal(err)
	}
	d := newDrive(t, 64<<20)
	b := &box{t: t, c: c, dir: filepath.Join(d.dir, "repo"), k: newKey(t)}
	b.startStream()
	// The stream starts at the slot's first segment, behind the WAL of
	// the clinic's setup. Filled while it catches up, the drive would not
	// stay full: the stream's unfinished segment and the kernel's space
	// reserved for unwritten data come back as it goes on. So the stream
	// catches up and the filesystem is synced first.
	b.waitCaughtUp(t, c, 1)
	d.sync()
	filler := d.fill(600 << 10)

	t.Run("backup", func(t *testing.T) {
		tr := newTry(t, "drive fills up during a base backup")
		p := b.start("backup")
		waitExit(t, p, "backup on a full drive")
		said := firstLine(p.Output(), "the drive is full")
		if stopped := firstLine(p.Output(), "stopped before storing WAL"); said == "" && stopped != "" {
			// The stream met the full drive first and stopped, and what
			// it left gave the backup room: the backup must then say at
			// once that the stream it waits for stopped, and the stream
			// must have said why.
			waitExit(t, b.stream, "stream on a full drive")
			if firstLine(b.stream.Output(), "the drive is full") != "" {
				said = stopped
			}
		}
		if p.Err() == nil || said == "" {
			t.Fatalf("backup on a full drive: got exit %v; want a 'the drive is full' error, or the stream's and a 'stopped' one\n%s\nthe stream said:\n%s",
				p.Err(), p.Output(), b.stream.Output())
		}
		b.checkAfterKill(t)
		if n := listed(t, b.dir); n != 0 {
			t.Errorf("got %d backups listed after a failed backup; want 0", n)
		}
		t.Logf("backup: %s", said)
		tr.Outcome = "backup exits non-zero (" + shorten(said) + "); no backup listed"
	})
	t.Run("stream", func(t *testing.T) {
		tr := newTry(t, "drive fills up while clinicctl stream writes")
		bulkWAL(t, c, 400000)
		waitExit(t, b.stream, "stream on a full drive")
		said := firstLine(b.stream.Output(), "the drive is full")
		if b.stream.Err() == nil || said == "" {
			t.Fatalf("stream on a full drive: got exit %v; want a 'the drive is full' error\n%s", b.stream.Err(), b.stream.Output())
		}
		b.stream = nil
		claimed := slotFlushed(t, c, slot)
		b.checkAfterKill(t)
		if tr.Lost = lostWAL(claimed, storedEnd(t, b.dir, b.k)); tr.Lost != "" {
			t.Error(tr.Lost)
		}
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		b.startStream()
		b.catchUp(t, c, 1) // once space was freed
		b.checkAfterKill(t)
		tr.Outcome = "stream stops (" + shorten(said) + "); once space was freed it caught up from the slot with no gap"
	})
}

// A drive that turns read-only under the stream: the stream stops with a
// clear error, a backup refuses to start, and the repository verifies.
func TestDriveTurnsReadOnly(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{})
	startLedger(t, c, 300)
	d := newDrive(t, 128<<20)
	b := &box{t: t, c: c, dir: filepath.Join(d.dir, "repo"), k: newKey(t)}
	b.startStream()
	tr := newTry(t, "drive turns read-only while clinicctl stream writes")
	d.turnReadOnly()
	waitExit(t, b.stream, "stream on a read-only drive")
	said := firstLine(b.stream.Output(), "read-only")
	if b.stream.Err() == nil || said == "" {
		t.Fatalf("stream on a read-only drive: got exit %v; want a 'read-only' error\n%s", b.stream.Err(), b.stream.Output())
	}
	b.stream = nil
	claimed := slotFlushed(t, c, slot)
	p := b.start("backup")
	waitExit(t, p, "backup on a read-only drive")
	saidBackup := firstLine(p.Output(), "read-only")
	if p.Err() == nil || saidBackup == "" {
		t.Errorf("backup on a read-only drive: got exit %v; want a 'read-only' error\n%s", p.Err(), p.Output())
	}
	b.checkAfterKill(t)
	if tr.Lost = lostWAL(claimed, storedEnd(t, b.dir, b.k)); tr.Lost != "" {
		t.Error(tr.Lost)
	}
	tr.Outcome = "stream stops (" + shorten(said) + "); backup refuses (" + shorten(saidBackup) + "); repository verifies"
}

// listed is how many backups a repository lists.
func listed(t *testing.T, dir string) int {
	t.Helper()
	r, err := archive.OpenFirstUse(dir)
	if err != nil {
		t.Fatal(err)
	}
	done, _, err := r.Backups()
	if err != nil {
		t.Fatal(err)
	}
	return len(done)
}

// tempPath matches the test's temporary paths, which differ on every run.
var tempPath = regexp.MustCompile(`/tmp/\S+?(["\s)]|$)`)

// shorten keeps the message of a log line short enough for a table cell,
// without the log's time stamp or the test's temporary paths.
func shorten(s string) string {
	if i := strings.Index(s, "msg="); i >= 0 {
		s = s[i+len("msg="):]
	}
	s = tempPath.ReplaceAllString(s, "FILE$1")
	if i := strings.Index(s, "clinicctl: "); i >= 0 {
		s = s[i+len("clinicctl: "):]
	}
	if i := strings.Index(s, "err="); i >= 0 {
		s = s[i+len("err="):]
	}
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return strings.Trim(s, `"`)
}
