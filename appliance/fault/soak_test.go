//go:build soak

package fault

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
	"github.com/clinicbox/clinicbox/drivers/tailnet/tailnettest"
	"github.com/clinicbox/clinicbox/drivers/testenv"
	"golang.org/x/sys/unix"
)

// A month of clinic life (make soak): cmd/clinicbox, built as for the
// box (no race detector), on its controlled clock for
// CLINICBOX_SOAK_DAYS simulated days (30) with three drives on loop
// devices, a clinic workload, and a vault on an in-process tailnet.
// Every workday at 08:00 the swap comes due and the test plays the front
// desk: eject, pull, put in the expected drive, wait for its backup;
// every evening at 21:00 the nightly backup runs. After each day it
// samples the service's RSS, goroutines, threads, open files, its state
// directory (/perm on the box), the custody log, the drive's use and the
// WAL lag, locally and offsite, and writes a table and a plot
// (CLINICBOX_SOAK_OUT, default bench/SOAK.md and bench/soak.svg).
func TestSoak(t *testing.T) {
	days := 30
	if v := os.Getenv("CLINICBOX_SOAK_DAYS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("CLINICBOX_SOAK_DAYS=%q: want a positive number", v)
		}
		days = n
	}
	out := os.Getenv("CLINICBOX_SOAK_OUT")
	if out == "" {
		out = "../../bench"
	}
	clinicboxRace = false
	s := newBoxService(t, 96<<20) // skips without loop devices
	c := pgtest.New(t, pgtest.Options{})
	ctx := context.Background()
	if err := c.ClinicInit(ctx, 500); err != nil {
		t.Fatal(err)
	}
	tn := tailnettest.New(t)
	serveVault(t, tn.Node(t, "vault", "tag:vault"), t.TempDir())
	k := newKey(t)
	monday := time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)
	s.useClock(monday)
	s.writeSettings(fmt.Sprintf(`{"database": {"url": %q}, "recipients": [%q], "rotation": {"time_zone": "UTC", "swap_at": "08:00", "holidays": ["2026-03-17"]},
		"offsite": {"name": "vault", "vault_url": "http://vault:8443", "control_url": %q, "hostname": "box"}}`, c.URL(), k.recipient, tn.ControlURL))
	wctx, stopClinic := context.WithCancel(ctx)
	defer stopClinic()
	go c.ClinicWorkload(wctx, 5, 500)

	s.start()
	drives := s.enrollThree()
	var samples []soakSample
	took := time.Now()
	for d := range days {
		day := monday.AddDate(0, 0, d)
		st := s.status()
		if st != nil && st.Swap.DueAt.Before(day.Add(25*time.Hour)) && st.Swap.DueAt.After(day) {
			s.swapTo(drives, st.Swap.DueAt)
		}
		s.nightly(day)
		samples = append(samples, s.sample(d+1, k))
		t.Logf("day %d: %s", d+1, samples[len(samples)-1])
	}
	t.Logf("%d days in %s", days, time.Since(took).Round(time.Second))
	if err := writeSoak(out, samples, machine(), time.Since(took)); err != nil {
		t.Fatal(err)
	}
	checkBounded(t, samples)
}

// enrollThree enrolls the drive in the box and two more, and returns the
// images by generation.
func (s *boxService) enrollThree() map[string]string {
	s.t.Helper()
	drives := map[string]string{}
	for i, name := range []string{"", "father.img", "grandfather.img"} {
		if i > 0 {
			s.changeDrive(s.newImage(name, 96<<20))
		}
		st := s.enroll()
		drives[st.InBox.Generation] = s.img
	}
	return drives
}

// swapTo moves the clock just past the swap at due and does what the
// front desk does: eject, pull, put in the expected drive, and wait for
// its backup.
func (s *boxService) swapTo(drives map[string]string, due time.Time) {
	s.t.Helper()
	at := due.Add(30 * time.Second)
	s.setClock(at)
	st := s.wait("swap due", 2*time.Minute, func(st *status.Status) bool {
		_, ok := condition(*st, "swap due", "")
		return ok
	})
	next := drives[st.Expected]
	if next == "" {
		s.t.Fatalf("the box expects %q, which is none of %v", st.Expected, drives)
	}
	s.changeDrive(next)
	s.waitBackup("the backup on insert", at)
}

// nightly moves the clock to 21:00 of day and waits for the nightly
// backup, verified.
func (s *boxService) nightly(day time.Time) {
	s.t.Helper()
	at := time.Date(day.Year(), day.Month(), day.Day(), 21, 0, 0, 0, time.UTC)
	s.setClock(at)
	s.waitBackup("the nightly backup", at)
}

// soakSample is one day's reading of the service.
type soakSample struct {
	Day                      int
	RSS                      int64 // bytes
	Goroutines, Threads, FDs int
	State, Custody           int64 // bytes: the state directory (/perm) and the custody log
	DriveUsed                int64 // bytes used on the drive in the box
	LocalLag, OffsiteLag     int64 // bytes of WAL behind the server
}

func (x soakSample) String() string {
	return fmt.Sprintf("rss %s goroutines %d threads %d fds %d state %s custody %s drive %s lag %s offsite lag %s",
		status.Bytes(x.RSS), x.Goroutines, x.Threads, x.FDs, status.Bytes(x.State), status.Bytes(x.Custody),
		status.Bytes(x.DriveUsed), status.Bytes(x.LocalLag), status.Bytes(x.OffsiteLag))
}

var goroutinesLine = regexp.MustCompile(`msg="clock moved" now=\S+ goroutines=(\d+)`)

// sample reads the service's process, its state directory and its status.
func (s *boxService) sample(day int, k key) soakSample {
	s.t.Helper()
	pid := s.proc.cmd.Process.Pid
	x := soakSample{Day: day, State: testenv.DirBytes(s.state)}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			switch {
			case len(f) >= 2 && f[0] == "VmRSS:":
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				x.RSS = kb << 10
			case len(f) >= 2 && f[0] == "Threads:":
				x.Threads, _ = strconv.Atoi(f[1])
			}
		}
	}
	if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		x.FDs = len(fds)
	}
	if m := goroutinesLine.FindAllStringSubmatch(s.proc.Output(), -1); len(m) > 0 {
		x.Goroutines, _ = strconv.Atoi(m[len(m)-1][1])
	}
	if fi, err := os.Stat(filepath.Join(s.state, "custody.jsonl")); err == nil {
		x.Custody = fi.Size()
	}
	if st := s.status(); st != nil {
		x.LocalLag = st.WAL.Local.Bytes
		if len(st.Offsite) > 0 {
			x.OffsiteLag = st.Offsite[0].Lag.Bytes
		}
	}
	var fs unix.Statfs_t
	if unix.Statfs(filepath.Join(s.run, s.loop.Name), &fs) == nil {
		x.DriveUsed = int64(fs.Blocks-fs.Bfree) * fs.Bsize
	}
	return x
}

// checkBounded fails when a resource kept growing over the month: the
// last week's highest reading above twice the first week's highest (and
// above a floor that ignores small numbers). Stored data (the custody
// log, the state directory) may grow with the days, but slowly.
func checkBounded(t *testing.T, xs []soakSample) {
	t.Helper()
	if len(xs) < 14 {
		t.Logf("%d days: too few to judge growth", len(xs))
		return
	}
	first, last := xs[:7], xs[len(xs)-7:]
	for _, m := range soakMetrics {
		if m.grows {
			continue
		}
		a, b := maxOf(first, m.get), maxOf(last, m.get)
		if b > 2*a && b > m.floor {
			t.Errorf("%s grew from at most %.0f in the first week to %.0f in the last", m.name, a, b)
		}
	}
}

func maxOf(xs []soakSample, get func(soakSample) float64) float64 {
	m := 0.0
	for _, x := range xs {
		m = max(m, get(x))
	}
	return m
}
