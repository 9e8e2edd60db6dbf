package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/clinicbox/clinicbox/appliance"
	"github.com/clinicbox/clinicbox/appliance/restore"
	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/appliance/web"
	"github.com/clinicbox/clinicbox/appliance/web/webclient"
	"github.com/clinicbox/clinicbox/rotation"
)

// boxService is cmd/clinicbox, built as for the box, run in a process of
// its own the way gokrazy runs it, with one drive: an ext4 image with the
// encrypt feature on a loop device (-loop-drives), which the service mounts,
// enrolls, backs up and drills itself. It is driven through its LAN pages.
type boxService struct {
	top   string // everything of the box: settings, state, drive image, log
	state string // -state: the box's key, state and drill reports
	run   string // -run: the drive is mounted at run/loopN
	dev   string // the drive's loop device, /dev/loopN
	log   string // the service's output
	proc  *child
	api   *webclient.Client
	drive string          // the enrolled drive's ID
	seen  map[string]bool // drill reports already read
	// setupPeak is the box's peak resident set ("1234 kB") once its
	// drive was enrolled, backed up and verified, before any drill.
	setupPeak string
}

// boxPoll is how often the box's status is read while waiting: each read
// is an HTTPS request the box answers, so the wall time of a drill is
// known to this much.
const boxPoll = 250 * time.Millisecond

// Lines of the service's log and console the bench reads.
var (
	boxPagesLine = regexp.MustCompile(`msg="pages on the practice's network" addr=(\S+)`)
	boxSetupCode = regexp.MustCompile(`setup code for the box's page: (\S+)`)
)

// startBox builds cmd/clinicbox, starts it with a drive made for it and
// waits until the drive is enrolled, backed up and verified: ready to
// drill. The repository is on the drive, where clinicctl drills it too.
func (b *bench) startBox(ctx context.Context) (*boxService, error) {
	x := &boxService{top: b.fresh("box"), seen: map[string]bool{}}
	x.state, x.run, x.log = filepath.Join(x.top, "state"), filepath.Join(x.top, "run"), filepath.Join(x.top, "clinicbox.log")
	bin := filepath.Join(b.tmp, "clinicbox")
	b.logf("drill: building clinicbox")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/clinicbox/clinicbox/cmd/clinicbox").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build clinicbox: %w\n%s", err, out)
	}
	if err := b.boxFiles(ctx, x); err != nil {
		x.close(b)
		return nil, err
	}
	if err := x.start(ctx, bin, b.ctl); err != nil {
		x.close(b)
		return nil, err
	}
	if err := x.enroll(ctx, b); err != nil {
		x.close(b)
		return nil, err
	}
	return x, nil
}

// boxFiles lays out the box's directories, its settings and its drive,
// attached to a loop device. The drive's file system can encrypt, so the
// box drills in a scratch directory on it that the kernel encrypts.
func (b *bench) boxFiles(ctx context.Context, x *boxService) error {
	images, pgDir := filepath.Join(x.top, "images"), filepath.Join(x.top, "pg")
	for _, d := range []string{x.top, images, x.run, pgDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	// The box finds PostgreSQL only in its trees, pgDir/pgN/usr/lib/...:
	// here each is the machine's own root, where Debian installs it.
	for _, major := range []string{"15", "16", "17"} {
		if err := os.Symlink("/", filepath.Join(pgDir, "pg"+major)); err != nil {
			return err
		}
	}
	settings := fmt.Sprintf(`{"database": {"url": %q}, "recipients": [%q], "rotation": {"time_zone": "UTC", "swap_at": "08:00"}, "drills": {"off": true, "after_enrollment": false}}`, b.pg.URL(), b.recip)
	if err := os.WriteFile(filepath.Join(x.top, "settings.json"), []byte(settings), 0o600); err != nil {
		return err
	}
	// Room for the backup, its WAL and a restore of the whole cluster.
	img := filepath.Join(images, "drive.img")
	size := fmt.Sprint(max(3*(b.dataBytes+b.clinicBytes), 1<<30))
	if err := runSteps(ctx, "the box's drive", [][]string{{"truncate", "-s", size, img}, encryptableExt4(img, "-L", "CLINICBOX")}); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, "losetup", "--find", "--show", img).Output()
	if err != nil {
		return fmt.Errorf("the box's drive: losetup %s: %w", img, err)
	}
	x.dev = strings.TrimSpace(string(out))
	return nil
}

// encryptableExt4 is mkfs.ext4 with the encrypt feature on dev.
func encryptableExt4(dev string, opts ...string) []string {
	return append(append([]string{"mkfs.ext4", "-q", "-F", "-O", "encrypt"}, opts...), dev)
}

// start runs the service and signs in to its pages with the setup code it
// shows on its console (a file here).
func (x *boxService) start(ctx context.Context, bin, ctl string) error {
	logf, err := os.Create(x.log)
	if err != nil {
		return err
	}
	defer logf.Close() // the child holds its own descriptor
	console := filepath.Join(x.top, "console")
	cmd := exec.CommandContext(ctx, bin, "-settings", filepath.Join(x.top, "settings.json"), "-state", x.state, "-run", x.run,
		"-listen", "127.0.0.1:0", "-loop-drives", filepath.Join(x.top, "images"), "-console", console,
		"-pg-dir", filepath.Join(x.top, "pg"), "-clinicctl", ctl)
	cmd.Env = append(os.Environ(), "TS_NO_LOGS_NO_SUPPORT=true")
	cmd.Stdout, cmd.Stderr = logf, logf
	if x.proc, err = startChild(cmd); err != nil {
		return err
	}
	password := fmt.Sprintf("clinicbench-%d", time.Now().UnixNano())
	return x.until(ctx, "the box's pages to sign in", 2*time.Minute, func() (bool, error) {
		addr := lastMatch(boxPagesLine, readHead(x.log))
		fp, err := web.ReadFingerprint(filepath.Join(x.state, "web"))
		if addr == "" || err != nil {
			return false, nil
		}
		x.api = webclient.New("https://"+addr, password, fp)
		x.api.SetSetupCode(lastMatch(boxSetupCode, readHead(console)))
		return x.api.SignIn(ctx) == nil, nil
	})
}

// enroll enrolls the drive when the box offers it and waits until its
// first base backup has verified and WAL streams onto it.
func (x *boxService) enroll(ctx context.Context, b *bench) error {
	b.logf("drill: the box enrolls its drive, backs the cluster up onto it and verifies the backup")
	err := x.until(ctx, "the drive offered for enrollment", 2*time.Minute, func() (bool, error) {
		st, err := x.status(ctx)
		return err == nil && st.InBox != nil && st.InBox.Decision == string(rotation.UnknownDrive), nil
	})
	if err != nil {
		return err
	}
	if _, err := x.request(ctx, web.ActEnroll); err != nil {
		return err
	}
	err = x.until(ctx, "the drive backed up, verified and streaming", 2*time.Hour, func() (bool, error) {
		st, err := x.status(ctx)
		if err != nil || st.InBox == nil || st.InBox.Activity != status.Streaming {
			return false, nil
		}
		for _, bk := range st.Backups {
			if bk.Verified == status.VerifiedOK {
				x.drive = bk.Drive
				return true, nil
			}
		}
		return false, nil
	})
	// Read now: each drill starts the process's peak again.
	x.setupPeak = x.peakRSS()
	return err
}

// drill asks the box for a restore drill of its drive on its page, as
// staff would, waits for the drill's record and reads its signed report
// from the box's state. The wall time runs from the request until the
// record is seen.
func (x *boxService) drill(ctx context.Context) (drillRun, error) {
	var r drillRun
	start, err := x.request(ctx, web.ActDrill)
	if err != nil {
		return r, err
	}
	var d status.Drill
	err = x.until(ctx, "the box's drill", 2*time.Hour, func() (bool, error) {
		st, err := x.status(ctx)
		if err != nil {
			return false, nil
		}
		var ok bool
		d, ok = newDrill(st.Drills, x.drive, x.seen)
		return ok, nil
	})
	r.m.Wall = time.Since(start)
	if err != nil {
		return r, err
	}
	x.seen[d.Report] = true
	if !d.OK {
		return r, fmt.Errorf("the box's drill %s did not pass (not run: %v): %s", d.Report, d.NotRun, strings.Join(d.Problems, "; "))
	}
	r.rep, err = readDrillReport(filepath.Join(x.state, "drills"), d.Report)
	return r, err
}

// request performs an action on the box's page, asking again while the
// box refuses it (busy with something else), and returns when the box
// took it.
func (x *boxService) request(ctx context.Context, action string) (time.Time, error) {
	var start time.Time
	var refused error
	err := x.until(ctx, "the box to take the "+action+" request", 10*time.Minute, func() (bool, error) {
		start = time.Now()
		refused = x.api.Act(ctx, action, "")
		return refused == nil, nil
	})
	if err != nil {
		return start, fmt.Errorf("%w\nthe box's last answer: %v", err, refused)
	}
	return start, nil
}

// newDrill is the drive's drill in ds whose report is not in seen.
func newDrill(ds []status.Drill, drive string, seen map[string]bool) (status.Drill, bool) {
	for _, d := range ds {
		if d.Drive == drive && d.Report != "" && !seen[d.Report] {
			return d, true
		}
	}
	return status.Drill{}, false
}

// readDrillReport reads the report named name (as the box's status names
// it) from dir; a name that is not a plain drill-* name is refused.
func readDrillReport(dir, name string) (restore.Report, error) {
	var rep restore.Report
	if !strings.HasPrefix(name, "drill-") || !filepath.IsLocal(name) || strings.ContainsAny(name, `/\`) {
		return rep, fmt.Errorf("the box names its drill report %q, not a report's name", name)
	}
	f, err := os.Open(filepath.Join(dir, name+".json"))
	if err != nil {
		return rep, err
	}
	defer f.Close()
	// A report is a few kB; a megabyte is far more than any holds.
	if err := json.NewDecoder(io.LimitReader(f, 1<<20)).Decode(&rep); err != nil {
		return rep, fmt.Errorf("drill report %s: %w", name, err)
	}
	return rep, nil
}

// status reads the box's status document.
func (x *boxService) status(ctx context.Context) (*status.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return x.api.Status(ctx)
}

// until polls cond every boxPoll until it holds, fails, the box ends or
// limit passes.
func (x *boxService) until(ctx context.Context, what string, limit time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	for {
		select {
		case <-x.proc.done:
			return fmt.Errorf("clinicbox ended while waiting for %s: %v\n%s", what, x.proc.err, readTail(x.log, 3000))
		default:
		}
		ok, err := cond()
		switch {
		case err != nil:
			return err
		case ok:
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("waited %v for %s\n%s", limit, what, readTail(x.log, 3000))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(boxPoll):
		}
	}
}

// peakRSS is the box process's own peak resident set (VmHWM, as
// "1234 kB") since it started or since a drill started it again; "" once
// it has gone.
func (x *boxService) peakRSS() string {
	return procField(fmt.Sprintf("/proc/%d/status", x.proc.cmd.Process.Pid), "VmHWM")
}

// close stops the service (it unmounts the drive), detaches the drive and
// drops the box's replication slot.
func (x *boxService) close(b *bench) {
	if x.proc != nil {
		if _, err := x.proc.stop(syscall.SIGTERM); err != nil {
			b.logf("stopping clinicbox: %v", err)
		}
	}
	if x.dev != "" {
		exec.Command("umount", filepath.Join(x.run, filepath.Base(x.dev))).Run() // left mounted only by a failed stop
		if out, err := exec.Command("losetup", "-d", x.dev).CombinedOutput(); err != nil {
			b.logf("detaching the box's drive %s: %v %s", x.dev, err, out)
		}
	}
	if err := b.dropSlot(context.Background(), appliance.DefaultSlot); err != nil {
		b.logf("dropping the box's slot: %v", err)
	}
	os.RemoveAll(x.top)
}

// repo is the repository on the drive, where the box mounts it.
func (x *boxService) repo() string {
	return filepath.Join(x.run, filepath.Base(x.dev), "clinicbox")
}

// lastMatch is the first group of re's last match in text; "" for none
// (a restarted service logs its address again).
func lastMatch(re *regexp.Regexp, text string) string {
	m := re.FindAllStringSubmatch(text, -1)
	if len(m) == 0 {
		return ""
	}
	return m[len(m)-1][1]
}

// readHead is the first megabyte of a file; "" when it cannot be read.
func readHead(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 1<<20))
	return string(b)
}

// readTail is the last n bytes of a file; "" when it cannot be read.
func readTail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		f.Seek(fi.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(io.LimitReader(f, n))
	return string(b)
}
