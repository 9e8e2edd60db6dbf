package fault

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/appliance/web"
	"github.com/clinicbox/clinicbox/appliance/web/webclient"
	"github.com/clinicbox/clinicbox/drivers/postgres"
	"github.com/clinicbox/clinicbox/drivers/testenv"
	"github.com/clinicbox/clinicbox/drivers/usb/usbtest"
	"github.com/jackc/pglogrepl"
	"golang.org/x/sys/unix"
)

var (
	clinicboxOnce sync.Once
	clinicboxBin  string // the appliance service, built by the first test that needs it
	clinicboxErr  error
	clinicboxRace = true // built with the race detector; the soak builds it as for the box
)

func buildClinicbox(t *testing.T) string {
	t.Helper()
	clinicboxOnce.Do(func() {
		clinicboxBin = filepath.Join(filepath.Dir(clinicctl), "clinicbox")
		args := []string{"build", "-o", clinicboxBin}
		if clinicboxRace {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, "github.com/clinicbox/clinicbox/cmd/clinicbox")...).CombinedOutput()
		if err != nil {
			clinicboxErr = fmt.Errorf("build clinicbox: %v\n%s", err, out)
		}
	})
	if clinicboxErr != nil {
		t.Fatal(clinicboxErr)
	}
	return clinicboxBin
}

// boxService is cmd/clinicbox run as a child the way gokrazy runs it on the
// box, against a real ext4 drive on a loop device (-loop-drives) whose
// kernel uevents it watches itself, driven through its LAN pages.
type boxService struct {
	t        *testing.T // the test or round the helpers fail
	top      *testing.T // the whole test: children are killed when it ends
	bin      string
	args     []string
	base     string // the LAN pages' URL
	password string
	run      string        // -run: the drive is mounted at run/loopN
	images   string        // -loop-drives: loop devices of images here are drives
	loop     *usbtest.Loop // the drive
	started  time.Time     // when the running child was started
	setPath  string        // the settings file
	state    string        // -state: the box's key, state and pages' certificate
	console  string        // the file the service shows its setup code in
	img      string        // the drive's image file

	// The service's clock (-clock-file) when set: the time last written
	// and when; "" runs it on the real clock.
	clockFile         string
	clockAt, clockSet time.Time

	proc    *Process // the running child; nil before the first start
	deleted int      // backups retention deleted in the runs killed so far
	api     *webclient.Client
}

// newBoxService plugs in an ext4 drive of size bytes (attached, not
// mounted: the service mounts it). Nothing runs until settings are written
// and start is called.
func newBoxService(t *testing.T, size int64) *boxService {
	t.Helper()
	top := testenv.SharedDir(t) // the server's user reads the repository at restores
	images := filepath.Join(top, "images")
	if err := os.Mkdir(images, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &boxService{t: t, top: t, bin: buildClinicbox(t), password: "fault-suite-" + fmt.Sprint(time.Now().UnixNano()), run: filepath.Join(top, "run"), images: images}
	if err := os.Mkdir(s.run, 0o755); err != nil {
		t.Fatal(err)
	}
	s.setPath = filepath.Join(top, "settings.json")
	s.plug(s.newImage("son.img", size))
	s.state = filepath.Join(top, "state")
	// The console is a file: what a monitor at the box would show.
	s.console = filepath.Join(top, "console")
	s.args = []string{"-settings", s.setPath, "-state", s.state, "-run", s.run, "-listen", "127.0.0.1:0", "-loop-drives", images, "-console", s.console}
	return s
}

// newImage makes an empty ext4 drive image of size bytes among the
// images the service takes drives from.
func (s *boxService) newImage(name string, size int64) string {
	s.t.Helper()
	img := filepath.Join(s.images, name)
	if err := os.Rename(usbtest.MakeImage(s.t, usbtest.Image{Type: "ext4", Label: "CLINICBOX", Size: size}), img); err != nil {
		s.t.Fatal(err)
	}
	return img
}

// plug attaches the image as the drive in the box.
func (s *boxService) plug(img string) {
	s.t.Helper()
	l := usbtest.AttachLoop(s.top, img)
	s.img = img
	// Runs before the detach: a killed service leaves its mount behind.
	s.top.Cleanup(func() {
		dir := filepath.Join(s.run, l.Name)
		if err := unix.Unmount(dir, 0); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			unix.Unmount(dir, unix.MNT_DETACH)
		}
	})
	s.loop = l
}

// writeSettings writes the settings file the service reads at start.
func (s *boxService) writeSettings(settings string) {
	s.t.Helper()
	if err := os.WriteFile(s.setPath, []byte(settings), 0o600); err != nil {
		s.t.Fatal(err)
	}
}

// repo is the repository on the drive, where the service mounts it.
func (s *boxService) repo() string { return filepath.Join(s.run, s.loop.Name, "clinicbox") }

// start runs the service and signs in to its pages.
func (s *boxService) start() {
	s.t.Helper()
	if s.clockFile != "" {
		s.writeClock(s.now()) // a restart goes on from where the clock was
	}
	cmd := exec.Command(s.bin, s.args...)
	cmd.Env = append(os.Environ(), "TS_NO_LOGS_NO_SUPPORT=true")
	p, err := StartCmd("clinicbox", cmd)
	if err != nil {
		s.t.Fatal(err)
	}
	s.top.Cleanup(func() { p.Kill() })
	s.proc, s.started = p, time.Now()
	s.base = ""
	s.poll("the box's pages to sign in", time.Minute, func() bool {
		// The service listens on a port the system chooses (a port picked
		// here and handed to it could be taken by another process before
		// it bound it, at every restart) and logs which.
		if s.base == "" {
			m := pagesLine.FindAllStringSubmatch(s.proc.Output(), -1)
			if len(m) == 0 {
				return false
			}
			s.base = "https://" + m[len(m)-1][1]
		}
		// The service makes its certificate at its first start and keeps
		// it in its state directory: the client pins what it finds there.
		fp, err := web.ReadFingerprint(filepath.Join(s.state, "web"))
		if err != nil {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		api := webclient.New(s.base, s.password, fp)
		api.SetSetupCode(setupCode(s.console))
		if api.SignIn(ctx) != nil {
			return false
		}
		s.api = api
		return true
	})
}

// setupCode is the last setup code shown on the console file, as someone
// at the box reads it; "" when none was shown.
func setupCode(console string) string {
	b, _ := os.ReadFile(console)
	m := setupCodeLine.FindAllSubmatch(b, -1)
	if len(m) == 0 {
		return ""
	}
	return string(m[len(m)-1][1])
}

// pagesLine is cmd/clinicbox's line naming the address of its LAN pages.
var pagesLine = regexp.MustCompile(`msg="pages on the practice's network" addr=(\S+)`)

var setupCodeLine = regexp.MustCompile(`setup code for the box's page: (\S+)`)

// poll waits for cond while the service shows progress (by default, that
// it prints or uses CPU), failing at once if the service ends.
func (s *boxService) poll(what string, stall time.Duration, cond func() bool, progress ...func() string) {
	s.t.Helper()
	if len(progress) == 0 {
		progress = []func() string{s.proc.Progress}
	}
	waitUntil(s.t, what, stall, func() bool {
		select {
		case <-s.proc.Done():
			s.t.Fatalf("clinicbox ended while waiting for %s: %v\n%s", what, s.proc.Err(), lastLines(s.proc.Output(), 40))
		default:
		}
		return cond()
	}, progress...)
}

// status reads the status document; nil while the pages do not answer.
// A session the service's clock has expired (the suite moves it by
// days) is renewed.
func (s *boxService) status() *status.Status {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := s.api.Status(ctx)
	if err != nil && s.api.SignIn(ctx) == nil {
		st, err = s.api.Status(ctx)
	}
	if err != nil {
		return nil
	}
	return st
}

// statusEvery is how often waits read the status: each read is an HTTPS
// request the service, built with the race detector, answers, so reading
// every pollEvery would be most of its work on a loaded machine.
const statusEvery = 100 * time.Millisecond

// wait reads the status until ok holds and returns that status. It fails
// when neither the status's progress (statusProgress) nor any of the
// extra fingerprints moved for stall.
func (s *boxService) wait(what string, stall time.Duration, ok func(*status.Status) bool, extra ...func() string) *status.Status {
	s.t.Helper()
	var st *status.Status
	var read time.Time
	progress := append([]func() string{func() string { return statusProgress(st) }}, extra...)
	defer func() {
		if s.t.Failed() {
			b, _ := json.MarshalIndent(st, "", "  ")
			s.t.Logf("waiting for %s\nstatus: %s\nlog: %s", what, b, lastLines(s.proc.Output(), 40))
		}
	}()
	s.poll(what, stall, func() bool {
		if time.Since(read) < statusEvery {
			return false
		}
		read = time.Now()
		if n := s.status(); n != nil {
			st = n
		}
		return st != nil && ok(st)
	}, progress...)
	return st
}

// statusProgress is what of the status moves while the service works on
// something: the drive's activity and its progress, events, backups and
// their checks, and the vault's base backups. The WAL positions, local
// and offsite, are left out: under a workload they move all the time,
// whatever else is stuck (a wait for WAL passes its own progress).
func statusProgress(st *status.Status) string {
	if st == nil {
		return ""
	}
	var b strings.Builder
	if st.InBox != nil {
		fmt.Fprintf(&b, "%s %s %.2f;", st.InBox.Decision, st.InBox.Activity, st.InBox.Progress)
	}
	if len(st.Events) > 0 {
		fmt.Fprintf(&b, "%d %s %s;", len(st.Events), st.Events[0].Time, st.Events[0].Message)
	}
	for _, bk := range st.Backups {
		fmt.Fprintf(&b, "%s %s;", bk.ID, bk.Verified)
	}
	for _, o := range st.Offsite {
		fmt.Fprintf(&b, "%v %s %s;", o.Connected, o.LastBaseBackup, o.WaitingForWAL)
	}
	return b.String()
}

// act performs an action on the pages.
func (s *boxService) act(name, arg string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.api.Act(ctx, name, arg); err != nil {
		s.t.Fatalf("%s: %v", name, err)
	}
}

// streaming reports whether the drive in the box takes WAL, stored past
// after.
func streaming(st *status.Status, after postgres.LSN) bool {
	if st.InBox == nil || st.InBox.Activity != "streaming" {
		return false
	}
	l, err := pglogrepl.ParseLSN(st.WAL.Local.FlushedLSN)
	return err == nil && l > after
}

// uploading reports whether this run of the service started an upload of
// a base backup to the vault that has not ended, by its events (newest
// first).
func (s *boxService) uploading(st *status.Status) bool {
	for _, e := range st.Events {
		if !e.Time.After(s.started) {
			return false
		}
		m := e.Message
		switch {
		case strings.HasPrefix(m, "Uploading base backup"):
			return true
		case strings.Contains(m, "is in the vault."), strings.Contains(m, "to the vault failed"):
			return false
		}
	}
	return false
}

// inVault reports whether the vault holds a base backup of the box.
func inVault(st *status.Status) bool {
	return len(st.Offsite) > 0 && !st.Offsite[0].LastBaseBackup.IsZero()
}

// keyLines are the lines of the running child's log about WAL, backups
// and retention, without the tailnet's chatter.
func (s *boxService) keyLines() string {
	var keep []string
	for _, l := range strings.Split(s.proc.Output(), "\n") {
		if !strings.Contains(l, "op=tailnet") && !strings.Contains(l, "level=DEBUG") {
			keep = append(keep, l)
		}
	}
	return lastLines(strings.Join(keep, "\n"), 80)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// repoListing lists a repository's backups and WAL, for failure reports.
func repoListing(dir string) string {
	r, err := archive.OpenFirstUse(dir)
	if err != nil {
		return err.Error()
	}
	var out strings.Builder
	done, _, err := r.Backups()
	for _, b := range done {
		fmt.Fprintf(&out, "backup %s start %s end %s good %v\n", b.ID, b.StartLSN, b.EndLSN, b.Good())
	}
	tls, _ := r.Timelines()
	for _, tl := range tls {
		fmt.Fprintf(&out, "timeline %d starts %v:", tl.TLI, tl.Starts)
		for _, s := range tl.Segments {
			fmt.Fprintf(&out, " %X", s.SegNo)
			if s.Partial {
				out.WriteString(".partial")
			}
		}
		out.WriteString("\n")
	}
	return out.String()
}
