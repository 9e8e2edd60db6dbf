package appliance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/restore"
	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
	"github.com/clinicbox/clinicbox/drivers/usb/usbtest"
	"golang.org/x/sys/unix"
)

var clinicctlOnce struct {
	sync.Once
	path string
	err  error
}

// clinicctlBinary builds clinicctl once for the package's tests: drills
// run its wal-fetch as their restore_command.
func clinicctlBinary(t *testing.T) string {
	t.Helper()
	clinicctlOnce.Do(func() {
		dir, err := os.MkdirTemp("", "clinicbox-clinicctl-")
		if err != nil {
			clinicctlOnce.err = err
			return
		}
		os.Chmod(dir, 0o755)
		clinicctlOnce.path = filepath.Join(dir, "clinicctl")
		out, err := exec.Command("go", "build", "-o", clinicctlOnce.path, "github.com/clinicbox/clinicbox/cmd/clinicctl").CombinedOutput()
		if err != nil {
			clinicctlOnce.err = fmt.Errorf("build clinicctl: %v %s", err, out)
		}
	})
	if clinicctlOnce.err != nil {
		t.Fatal(clinicctlOnce.err)
	}
	return clinicctlOnce.path
}

// scratchFS is the box's scratch filesystem in a test: ext4 with the
// encrypt feature on a loop device, as /perm on the box.
type scratchFS struct {
	image, mount string
	loop         *usbtest.Loop
}

// newScratchFS formats, attaches and mounts a scratch filesystem.
func newScratchFS(t *testing.T) *scratchFS {
	t.Helper()
	fs := &scratchFS{image: usbtest.MakeImage(t, usbtest.Image{Type: "ext4", Size: 256 << 20, Options: []string{"-O", "encrypt"}})}
	fs.loop = usbtest.AttachLoop(t, fs.image)
	var err error
	if fs.mount, err = os.MkdirTemp("", "clinicbox-perm-"); err != nil {
		t.Fatal(err)
	}
	os.Chmod(fs.mount, 0o755)
	if err := unix.Mount(fs.loop.Dev, fs.mount, "ext4", unix.MS_NOATIME|unix.MS_NODEV|unix.MS_NOSUID, ""); err != nil {
		t.Fatalf("mount scratch: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(fs.mount, 0); err != nil {
			unix.Unmount(fs.mount, unix.MNT_DETACH)
		}
		os.Remove(fs.mount)
	})
	return fs
}

// drillRig is a box that drills with the host's PostgreSQL 15. Its drives
// (directories on the host's filesystem) cannot encrypt, so drills use the
// box's scratch, returned; drills is the settings' drills section.
func drillRig(t *testing.T, start time.Time, drills string, fetch string) (*rig, *scratchFS) {
	t.Helper()
	fs := newScratchFS(t)
	scratch := filepath.Join(fs.mount, "scratch")
	if fetch == "" {
		fetch = clinicctlBinary(t)
	}
	r := newRig(t, start, func(c *Config) {
		c.Settings.Drills = json.RawMessage(drills)
		c.Drills = &DrillConfig{FetchProgram: fetch, Scratch: scratch}
	})
	// The box's role may read every table: row counts at backup time.
	if err := r.db.Exec(context.Background(), "GRANT pg_read_all_data TO "+pgtest.ReplUser); err != nil {
		t.Fatal(err)
	}
	return r, fs
}

// scratchLeft lists what drills left in the box's scratch and on the drive.
func scratchLeft(r *rig, fs *scratchFS, drive string) []string {
	var out []string
	for _, dir := range []string{filepath.Join(fs.mount, "scratch"), filepath.Join(r.sim.Dir, drive, scratchOnDrive)} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

func lastDrill(st status.Status) (status.Drill, bool) {
	if len(st.Drills) == 0 {
		return status.Drill{}, false
	}
	return st.Drills[len(st.Drills)-1], true
}

// A drive enrolled in the morning is not drilled at once (after_enrollment
// off); the drill comes after the night's backup verified, passes, compares
// the row counts recorded at backup time, and shows in the status with its
// signed report on the drive and on the box.
func TestScheduledDrillPassesAndShows(t *testing.T) {
	monday := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	r, fs := drillRig(t, time.Date(2026, 3, 2, 7, 0, 0, 0, mustLoc(t, "America/Chicago")), `{"after_enrollment": false}`, "")
	r.at(monday, 7, 0)
	gen := r.enroll("blue")
	if st := r.a.Status(); len(st.Drills) != 0 || hasCondition(st, CondDrilling) {
		t.Fatalf("a drill ran before the night's backup: %+v", st.Drills)
	}
	r.workload(10)
	r.at(monday, 21, 30)
	st := r.wait("a drill after the nightly backup", func(st status.Status) bool {
		_, ok := lastDrill(st)
		return ok && !hasCondition(st, CondDrilling)
	})
	d, _ := lastDrill(st)
	if !d.OK || d.Drive == "" || d.Report == "" || d.RTO <= 0 {
		t.Fatalf("drill: %+v; want a passed drill of %s with a report and an RTO", d, gen)
	}
	if want := sourceMajor(t, r); !strings.HasPrefix(d.Server, want+".") {
		t.Errorf("the status names server version %q; want the source's PostgreSQL %s", d.Server, want)
	}
	if n := verifiedBackups(st, gen); n < 2 {
		t.Fatalf("%d verified backups; want the drill after the nightly one", n)
	}
	if hasCondition(st, condDrillFailed) || st.Severity == status.Failure {
		t.Errorf("after a passed drill: %s", st.Headline)
	}
	for _, dir := range []string{filepath.Join(r.sim.Dir, "blue", repoDir, "drills"), filepath.Join(r.a.cfg.StateDir, "drills")} {
		b, err := os.ReadFile(filepath.Join(dir, d.Report+".json"))
		if err != nil {
			t.Fatalf("report in %s: %v", dir, err)
		}
		if _, err := os.Stat(filepath.Join(dir, d.Report+".html")); err != nil {
			t.Errorf("printable report in %s: %v", dir, err)
		}
		var rep restore.Report
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatal(err)
		}
		if err := rep.VerifySignature(r.a.key.Signer.Public()); err != nil {
			t.Errorf("report in %s: %v", dir, err)
		}
		if !hasCheck(rep, "postgres: rows in public.encounters", "on the server at") {
			t.Errorf("report in %s compares no row count of encounters with the backup's: %+v", dir, rep.Checks)
		}
	}
	if left := scratchLeft(r, fs, "blue"); len(left) > 0 {
		t.Errorf("scratch left after the drill: %v", left)
	}
}

// sourceMajor is the major version of the rig's database server.
func sourceMajor(t *testing.T, r *rig) string {
	t.Helper()
	ctx := context.Background()
	conn, err := r.db.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v string
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	major, _, _ := strings.Cut(v, ".")
	return major
}

func hasCheck(rep restore.Report, name, detail string) bool {
	for _, c := range rep.Checks {
		if c.Name == name && c.OK && strings.Contains(c.Detail, detail) {
			return true
		}
	}
	return false
}

// A drive whose WAL was damaged fails its drill with the segment named,
// and the panel goes red with the reason.
func TestDrillOfDamagedWALFails(t *testing.T) {
	monday := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	r, _ := drillRig(t, time.Date(2026, 3, 2, 7, 0, 0, 0, mustLoc(t, "America/Chicago")), `{"after_enrollment": false}`, "")
	r.at(monday, 7, 0)
	r.enroll("blue")
	for range 3 {
		r.workload(5)
		r.db.MustExec(t, "SELECT pg_switch_wal()")
	}
	r.workload(5)
	r.caughtUp()
	seg := damageMiddleSegment(t, filepath.Join(r.sim.Dir, "blue", repoDir, "wal"))
	if err := r.a.Do(context.Background(), ActDrill, "", "test"); err != nil {
		t.Fatal(err)
	}
	st := r.wait("the failed drill", func(st status.Status) bool { return hasCondition(st, condDrillFailed) })
	d, _ := lastDrill(st)
	if d.OK || len(d.Problems) == 0 || !strings.Contains(d.Problems[0], seg) {
		t.Errorf("drill: %+v; want a failure naming %s first", d, seg)
	}
	if st.Conditions[0].Name != condDrillFailed || st.Panel.Red != "fast" || !strings.Contains(st.Headline, seg) {
		t.Errorf("panel %+v, headline %q; want red with the drill's failure naming %s", st.Panel, st.Headline, seg)
	}
}

// damageMiddleSegment flips a byte inside a stored WAL segment that lies
// between others, and returns the segment's name.
func damageMiddleSegment(t *testing.T, walDir string) string {
	t.Helper()
	var files []string
	filepath.WalkDir(walDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && len(d.Name()) >= 24 && !strings.Contains(d.Name(), "partial") && !strings.HasPrefix(d.Name(), ".") {
			files = append(files, p)
		}
		return nil
	})
	if len(files) < 3 {
		t.Fatalf("want at least 3 stored segments; have %v", files)
	}
	p := files[len(files)-2]
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return filepath.Base(p)[:24]
}

// walGate is a restore_command that holds a drill's recovery at its first
// segment: by then the base backup is restored into the scratch and the
// drill's PostgreSQL runs.
type walGate struct {
	dir, program, fifo string
}

func newWALGate(t *testing.T) *walGate {
	t.Helper()
	// The drill's PostgreSQL runs the program as its own user: the
	// directory must be reachable and writable for it.
	dir, err := os.MkdirTemp("", "clinicbox-gate-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o777)
	g := &walGate{dir: dir, program: filepath.Join(dir, "wal-fetch"), fifo: filepath.Join(dir, "release")}
	if err := exec.Command("mkfifo", "-m", "0666", g.fifo).Run(); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("#!/bin/sh\necho $$ > %s/replaying\n[ -e %s/open ] || read x < %s\nexec %s \"$@\"\n", dir, dir, g.fifo, clinicctlBinary(t))
	if err := os.WriteFile(g.program, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.release)
	return g
}

// reached waits until recovery asked the gate for WAL.
func (g *walGate) reached(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for {
		if _, err := os.Stat(filepath.Join(g.dir, "replaying")); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("the drill's PostgreSQL never asked for WAL")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// open lets every restore_command through from now on, the one held too.
func (g *walGate) open() {
	os.WriteFile(filepath.Join(g.dir, "open"), nil, 0o644)
	g.release()
}

// release lets the held restore_command go on.
func (g *walGate) release() {
	if f, err := os.OpenFile(g.fifo, os.O_RDWR, 0); err == nil {
		f.Write([]byte("go\n"))
		f.Close()
	}
}

// An eject while the drill's PostgreSQL is replaying WAL stops the drill
// at once: the drive becomes safe to remove, nothing is recorded, no
// PostgreSQL of the drill is left running and its scratch is gone.
func TestEjectStopsDrill(t *testing.T) {
	gate := newWALGate(t)
	monday := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	r, fs := drillRig(t, time.Date(2026, 3, 2, 7, 0, 0, 0, mustLoc(t, "America/Chicago")), `{"after_enrollment": false}`, gate.program)
	r.at(monday, 7, 0)
	r.enroll("blue")
	if err := r.a.Do(context.Background(), ActDrill, "", "test"); err != nil {
		t.Fatal(err)
	}
	r.wait("the drill running", func(st status.Status) bool { return hasCondition(st, CondDrilling) })
	gate.reached(t)
	if err := r.a.Do(context.Background(), ActEject, "", "test"); err != nil {
		t.Fatal(err)
	}
	st := r.wait("safe to remove", func(st status.Status) bool { return st.InBox != nil && st.InBox.Activity == "safe to remove" })
	if len(st.Drills) != 0 || hasCondition(st, CondDrilling) {
		t.Errorf("after the eject: drills %+v, conditions %v; want none", st.Drills, st.Conditions)
	}
	if left := scratchLeft(r, fs, "blue"); len(left) > 0 {
		t.Errorf("scratch left after the eject: %v", left)
	}
	if procs := processesMentioning(t, fs.mount, "postgres"); len(procs) > 0 {
		t.Errorf("the drill's PostgreSQL still runs: %v", procs)
	}
}

// A power cut while the drill's PostgreSQL runs on the restored database
// leaves none of the database readable on the scratch filesystem: with
// everything written out (syncfs) and the filesystem then shut down, a
// marker the clinic's database holds is nowhere on the raw device, while
// the same marker written beside the scratch is.
func TestPowerCutMidDrillLeavesNoPlaintext(t *testing.T) {
	const marker = "PLAINTEXT-MARKER-93ad"
	gate := newWALGate(t)
	monday := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	r, fs := drillRig(t, time.Date(2026, 3, 2, 7, 0, 0, 0, mustLoc(t, "America/Chicago")), `{"after_enrollment": false}`, gate.program)
	r.db.MustExec(t, "CREATE TABLE marker (t text)",
		fmt.Sprintf("INSERT INTO marker SELECT '%s-' || g FROM generate_series(1, 2000) g", marker), "CHECKPOINT")
	r.at(monday, 7, 0)
	r.enroll("blue")
	if err := r.a.Do(context.Background(), ActDrill, "", "test"); err != nil {
		t.Fatal(err)
	}
	gate.reached(t)
	if dirs, _ := filepath.Glob(filepath.Join(fs.mount, "scratch", "clinicbox-scratch-*")); len(dirs) != 1 {
		t.Fatalf("the drill's scratch on the box's scratch filesystem: %v; want one directory", dirs)
	}
	if err := os.WriteFile(filepath.Join(fs.mount, "beside"), []byte(marker+"-control"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(fs.mount)
	if err != nil {
		t.Fatal(err)
	}
	err = unix.Syncfs(int(f.Fd()))
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	usbtest.CutPower(t, fs.mount)
	gate.release() // recovery goes on into a dead filesystem and stops
	r.stop()
	if err := unix.Unmount(fs.mount, 0); err != nil {
		unix.Unmount(fs.mount, unix.MNT_DETACH) // nothing more reaches the device after the shutdown
	}
	raw, err := os.ReadFile(fs.image)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte(marker+"-control")) {
		t.Fatal("the control marker is not on the device: the search proves nothing")
	}
	if i := bytes.Index(raw, []byte(marker+"-1")); i >= 0 {
		t.Fatalf("the clinic's data is readable on the scratch device at byte %d after the power cut", i)
	}
}

// processesMentioning lists the command lines of running processes whose
// program name contains prog and whose arguments mention s.
func processesMentioning(t *testing.T, s, prog string) []string {
	t.Helper()
	var out []string
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range cmdlines {
		b, err := os.ReadFile(p)
		if err != nil || len(b) == 0 {
			continue
		}
		args := strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")
		if strings.Contains(filepath.Base(args[0]), prog) && strings.Contains(string(b), s) {
			out = append(out, strings.Join(args, " "))
		}
	}
	return out
}

// A drill asked for at a chosen moment restores to that moment: the
// visits after it are not replayed. A moment outside the drive's window
// is refused with the window named, a malformed one with the form to use,
// and neither starts a drill.
func TestDrillToChosenMoment(t *testing.T) {
	start := time.Now().Truncate(time.Second)
	// The rig's clock starts at the real time (the database's commits
	// carry real times): at the nightly hour the night's backup would be
	// marked done and a scheduled drill would start. Only asked-for drills
	// run here.
	r, _ := drillRig(t, start, `{"after_enrollment": false, "off": true}`, "")
	r.enroll("blue")
	r.workload(5)
	mid := time.Now()
	r.workload(5)
	r.caughtUp()
	ctx := context.Background()
	for _, c := range []struct{ at, want string }{
		{"2020-01-01T00:00:00Z", "outside the drive's recoverable window (from " + start.UTC().Format(time.RFC3339)},
		{"yesterday at noon", "RFC 3339"},
		{mid.Add(time.Hour).Format(time.RFC3339), "outside"},
	} {
		err := r.a.Do(ctx, ActDrill, c.at, "test")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("drill to %q: %v; want a refusal saying %q", c.at, err, c.want)
		}
	}
	if st := r.a.Status(); len(st.Drills) != 0 || hasCondition(st, CondDrilling) {
		t.Fatalf("a refused drill ran: %+v", st.Drills)
	}
	at := mid.UTC().Format(time.RFC3339Nano)
	if err := r.a.Do(ctx, ActDrill, at, "test"); err != nil {
		t.Fatal(err)
	}
	st := r.wait("the drill to "+at, func(st status.Status) bool {
		_, ok := lastDrill(st)
		return ok && !hasCondition(st, CondDrilling)
	})
	d, _ := lastDrill(st)
	if !d.OK || d.Target != "time "+at {
		t.Fatalf("drill: %+v; want a passed drill to time %s", d, at)
	}
	b, err := os.ReadFile(filepath.Join(r.sim.Dir, "blue", repoDir, "drills", d.Report+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep restore.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.LastReplayed.Before(start) || rep.LastReplayed.After(mid) {
		t.Errorf("the drill replayed commits up to %s; want the last visit before %s (and after %s)", rep.LastReplayed, mid, start)
	}
	if !slices.ContainsFunc(st.Events, func(e status.Event) bool { return e.Kind == "drill" && strings.Contains(e.Message, "to time "+at) }) {
		t.Errorf("the box's events name no drill to time %s: %+v", at, st.Events)
	}
}

// A drive whose stored WAL was damaged fails the verification of its next
// backup (the verifier reads every stored segment). A drill to the latest
// is then refused, but one to a moment before that backup runs, restores
// the older backup, and fails with the damaged segment named.
func TestDrillToMomentAfterFailedVerification(t *testing.T) {
	r, _ := drillRig(t, time.Now().Truncate(time.Second), `{"after_enrollment": false, "off": true}`, "") // only asked-for drills, as above
	r.enroll("blue")
	for range 3 {
		r.workload(5)
		r.db.MustExec(t, "SELECT pg_switch_wal()")
	}
	at := time.Now().UTC().Format(time.RFC3339Nano)
	r.workload(5)
	r.caughtUp()
	seg := damageMiddleSegment(t, filepath.Join(r.sim.Dir, "blue", repoDir, "wal"))
	ctx := context.Background()
	r.clock.Set(time.Now()) // the new backup ends after the chosen moment
	if err := r.a.Do(ctx, ActBackup, "", "test"); err != nil {
		t.Fatal(err)
	}
	r.wait("the new backup's verification failed", func(st status.Status) bool { return hasCondition(st, condBackupFailed) })
	if err := r.a.Do(ctx, ActDrill, "", "test"); err == nil || !strings.Contains(err.Error(), "no verified backup") {
		t.Errorf("a drill to the latest after a failed verification: %v; want it refused", err)
	}
	if err := r.a.Do(ctx, ActDrill, at, "test"); err != nil {
		t.Fatal(err)
	}
	st := r.wait("the failed drill", func(st status.Status) bool { return hasCondition(st, condDrillFailed) })
	d, _ := lastDrill(st)
	if d.OK || d.NotRun || d.Target != "time "+at || !strings.Contains(strings.Join(d.Problems, "; "), seg) {
		t.Errorf("drill: %+v; want a failed drill to time %s naming %s", d, at, seg)
	}
}
