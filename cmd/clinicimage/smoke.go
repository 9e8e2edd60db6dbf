package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/appliance/web/webclient"
)

// smoke is one smoke run: the booted machine and what its steps share.
type smoke struct {
	set Smoke
	// steps are what this run checks (smokeSteps, piSmokeSteps).
	steps []step
	// dir is the run's scratch directory: serial log, monitor socket, disks.
	dir  string
	vm   *VM
	ui   *webUI
	box  *webclient.Client
	db   *hostDB
	host *hostSide
	out  io.Writer
	// root, target and stderr are what an update builds from.
	root   string
	target *Target
	stderr io.Writer
	// drive is what the drive steps pass on to each other.
	drive driveRun
	// dbPort is the host port the guest's relays reach the database on;
	// fwd, once the clinic moved to PostgreSQL 17, forwards it there.
	dbPort int
	fwd    net.Listener
}

// step is one check of the smoke test, run in order against the booted
// machine. A step waits for what it checks (the guest is slow under
// emulation) until its context ends.
type step struct {
	name  string
	limit stepLimit
	run   func(ctx context.Context, s *smoke) error
}

// stepLimit says which of gokr-packer.yml's timeouts bounds a step.
type stepLimit int

const (
	stepTimeout   stepLimit = iota // smoke.step_timeout
	bootTimeout                    // smoke.boot_timeout: the wait for the machine to boot
	backupTimeout                  // smoke.backup_timeout: a base backup and its verification in the guest
)

func (l stepLimit) of(m Smoke) time.Duration {
	switch l {
	case bootTimeout:
		return m.BootTimeout
	case backupTimeout:
		return m.BackupTimeout
	}
	return m.StepTimeout
}

// smokeSteps is what make smoke checks.
var smokeSteps = []step{
	{"gokrazy web interface answers, /perm mounted", bootTimeout, waitWebUI},
	{"clinicbox is supervised and running", stepTimeout, clinicboxRunning},
	{"clinicbox read its settings and runs", stepTimeout, clinicboxStarting},
	{"box password set; clock trusted; database reachable", stepTimeout, boxSignIn},
	{"NVMe and SATA disks' health read by the box; not backup drives", stepTimeout, ownDisksHealth},
	{"a new USB drive reaches the guest; offered for enrollment", stepTimeout, plugNewDrive},
	{"enrolled as Son; base backup taken and verified", backupTimeout, enrollAndBackUp},
	{"the USB drive's health is unknown, not guessed", stepTimeout, usbHealthUnknown},
	// The visits' segment is completed: its rest (zeros) streams too.
	{"visits after the backup stream onto the drive", backupTimeout, visitsReachDrive},
	{"the box drills the drive with the PostgreSQL it carries: passed", backupTimeout, drillOnBox},
	{"a practice's check fails: the box's next drill fails, red with it", backupTimeout, drillFailsOnBox},
	{"acknowledge, eject: safe to remove; unplugged", stepTimeout, ejectAndUnplug},
	{"host: drive's repository passes clinicctl verify", stepTimeout, verifyOnHost},
	{"host: both signed drill reports on the drive; a forged one refused", stepTimeout, drillReportOnDrive},
	{"host: clinicctl restore; PostgreSQL starts with every visit", stepTimeout, restoreOnHost},
	{"host: a WAL segment on the drive damaged; plugged back in: verification names it", backupTimeout, damageWALOnHost},
	{"a drill to a moment before that backup fails, red with the segment; unplugged", backupTimeout, damagedWALFailsDrill},
	{"an unknown drive is not written and the status says so", stepTimeout, unknownDriveUntouched},
	{"updated over the network: new build boots, /perm and the rotation kept", bootTimeout, updateOverNetwork},
	{"the clinic moves to PostgreSQL 17 at the same address; the box reaches it", stepTimeout, switchTo17},
	{"Father enrolled and backed up from PostgreSQL 17; the box drills it with its PostgreSQL 17: passed", backupTimeout, fatherDrill17},
}

// runSmoke is "clinicimage smoke" (or "smoke-pi", see smokePlan): start
// a clinic database on the host, build the smoke target's image with a
// throwaway web interface password and the box's settings on /perm, boot
// it under qemu, run the steps, stop qemu and the database.
func runSmoke(ctx context.Context, name string, args []string, stdout, stderr io.Writer) (err error) {
	fset := flag.NewFlagSet(name, flag.ContinueOnError)
	fset.SetOutput(stderr)
	keep := fset.Bool("keep", false, "keep the scratch directory (image, serial log, password)")
	if err := fset.Parse(args); err != nil {
		return err
	}
	root, set, err := loadProject()
	if err != nil {
		return err
	}
	m, steps, err := smokePlan(name, set)
	if err != nil {
		return err
	}
	if err := smokePrereqs(m); err != nil {
		return fmt.Errorf("smoke: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(root, "_work"), 0o755); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(filepath.Join(root, "_work"), name+"-")
	if err != nil {
		return err
	}
	s := &smoke{set: m, steps: steps, dir: dir, out: stdout}
	defer func() {
		if *keep || err != nil {
			fmt.Fprintf(stdout, "smoke: kept %s\n", dir)
			return
		}
		os.RemoveAll(dir)
	}()
	total := time.Now()
	stop, err := s.setUp(ctx, root, set.Targets[m.Target], *keep, stderr)
	defer stop(&err)
	if err != nil {
		return err
	}
	if err := s.runSteps(ctx); err != nil {
		s.report(ctx, stderr)
		return err
	}
	fmt.Fprintf(stdout, "smoke: passed in %s\n", since(total))
	return nil
}

func (s *smoke) runSteps(ctx context.Context) error {
	boot := time.Now()
	for _, st := range s.steps {
		start := time.Now()
		sctx, cancel := context.WithTimeout(ctx, st.limit.of(s.set))
		err := st.run(sctx, s)
		cancel()
		if err != nil {
			return fmt.Errorf("smoke: %s: %w", st.name, err)
		}
		fmt.Fprintf(s.out, "smoke: ok   %-62s %6s (%s since boot)\n", st.name, since(start), since(boot))
	}
	return nil
}

// report prints what helps to see why a step failed: the end of the
// serial console, clinicbox's recent output and the last status document
// the box gave.
func (s *smoke) report(ctx context.Context, w io.Writer) {
	fmt.Fprintf(w, "smoke: serial console, last lines:\n%s\n", tail(s.vm.SerialLog, 25))
	for _, stream := range []string{"stdout", "stderr"} {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		lines, err := s.ui.RecentLog(ctx, clinicboxPath, stream)
		cancel()
		if len(lines) > 25 {
			lines = lines[len(lines)-25:]
		}
		fmt.Fprintf(w, "smoke: %s %s (%v):\n%s\n", clinicboxPath, stream, err, strings.Join(lines, "\n"))
	}
	if st := s.box.LastStatus(); st != nil {
		var b bytes.Buffer
		json.Indent(&b, st, "", "  ")
		fmt.Fprintf(w, "smoke: the last status document:\n%s\n", b.String())
	}
}

// pollStatus reads the box's status document every second until check
// accepts it; see poll.
func (s *smoke) pollStatus(ctx context.Context, check func(*status.Status) error) error {
	return s.poll(ctx, time.Second, func() error {
		st, err := s.box.Status(ctx)
		if err != nil {
			return err
		}
		return check(st)
	})
}

// poll calls f every interval until it returns nil or a failNow error,
// qemu exits or ctx ends, and then returns f's last error.
func (s *smoke) poll(ctx context.Context, interval time.Duration, f func() error) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var last error
	for {
		err := f()
		if err == nil || isFailNow(err) {
			return err
		}
		if ctx.Err() == nil || last == nil {
			last = err // not the error of a call cut short by the deadline
		}
		select {
		case <-tick.C:
		case <-s.vm.Exited():
			return fmt.Errorf("qemu exited (%v); last error: %w", s.vm.Err(), last)
		case <-ctx.Done():
			return fmt.Errorf("%w; last error: %w", ctx.Err(), last)
		}
	}
}

// waitSerial waits until the serial console log holds want after byte
// offset from, and returns the offset after it.
func (s *smoke) waitSerial(ctx context.Context, from int64, want string) (int64, error) {
	var at int64
	err := s.poll(ctx, 250*time.Millisecond, func() error {
		b, err := os.ReadFile(s.vm.SerialLog)
		if err != nil {
			return err
		}
		if int64(len(b)) > from {
			if i := bytes.Index(b[from:], []byte(want)); i >= 0 {
				at = from + int64(i+len(want))
				return nil
			}
		}
		return fmt.Errorf("serial console has no %q yet", want)
	})
	return at, err
}

func since(t time.Time) time.Duration { return time.Since(t).Round(100 * time.Millisecond) }

// tail returns the last n lines of a file, for failure reports.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
