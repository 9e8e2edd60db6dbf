package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// smoke is one smoke run: the booted machine and what its steps share.
type smoke struct {
	set Smoke
	// dir is the run's scratch directory: serial log, monitor socket, disks.
	dir string
	vm  *VM
	ui  *webUI
	out io.Writer
}

// step is one check of the smoke test, run in order against the booted
// machine. A step waits for what it checks (the guest is slow under
// emulation) until its context ends.
type step struct {
	name string
	// boot marks a step that waits for the machine to boot; it gets
	// smoke.boot_timeout instead of smoke.step_timeout.
	boot bool
	run  func(ctx context.Context, s *smoke) error
}

// smokeSteps is what make smoke checks. New checks (a PostgreSQL on the
// host, an enrolled drive, clinicctl verify on the unplugged disk) are
// further steps here, built on VM.PlugUSB, VM.UnplugUSB, webUI and
// waitSerial.
var smokeSteps = []step{
	{"gokrazy web interface answers, /perm mounted", true, waitWebUI},
	{"clinicbox is supervised and running", false, clinicboxRunning},
	{"clinicbox logged that it is starting", false, clinicboxStarting},
	{"a USB disk plugged through the monitor reaches the guest kernel", false, usbDiskArrives},
}

// runSmoke is "clinicimage smoke": build the smoke target's image with a
// throwaway web interface password, boot it under qemu, run smokeSteps,
// stop qemu.
func runSmoke(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	fset := flag.NewFlagSet("smoke", flag.ContinueOnError)
	fset.SetOutput(stderr)
	keep := fset.Bool("keep", false, "keep the scratch directory (image, serial log, password)")
	if err := fset.Parse(args); err != nil {
		return err
	}
	root, set, err := loadProject()
	if err != nil {
		return err
	}
	m := set.Smoke
	if _, err := exec.LookPath(m.Qemu); err != nil {
		return fmt.Errorf("smoke: %w (install qemu-system-x86, see .ci/setup)", err)
	}
	if _, err := os.Stat(m.OVMF); err != nil {
		return fmt.Errorf("smoke: UEFI firmware: %w (install ovmf)", err)
	}
	if err := os.MkdirAll(filepath.Join(root, "_work"), 0o755); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(filepath.Join(root, "_work"), "smoke-")
	if err != nil {
		return err
	}
	defer func() {
		if *keep || err != nil {
			fmt.Fprintf(stdout, "smoke: kept %s\n", dir)
			return
		}
		os.RemoveAll(dir)
	}()
	s := &smoke{set: m, dir: dir, out: stdout}
	password := rand.Text()
	if *keep {
		os.WriteFile(filepath.Join(dir, "http-password.txt"), []byte(password+"\n"), 0o600)
	}
	total := time.Now()
	image := filepath.Join(dir, "clinicbox.img")
	start := time.Now()
	if err := buildImage(ctx, root, set.Targets[m.Target], password, image, io.Discard, stderr); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "smoke: built the %s image in %s\n", m.Target, since(start))
	if s.vm, err = startVM(ctx, vmConfig{Qemu: m.Qemu, OVMF: m.OVMF, Image: image,
		MemoryMiB: m.MemoryMiB, CPUs: m.CPUs, Dir: dir}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "smoke: qemu pid %d, web interface on %s\n", s.vm.Pid(), s.vm.HTTPAddr)
	defer func() {
		if stopErr := s.vm.Stop(); stopErr != nil && err == nil {
			err = fmt.Errorf("smoke: qemu: %w", stopErr)
		}
		fmt.Fprintf(stdout, "smoke: stopped qemu pid %d\n", s.vm.Pid())
	}()
	s.ui = &webUI{Base: "http://" + s.vm.HTTPAddr, Password: password}
	if err := s.runSteps(ctx); err != nil {
		s.report(ctx, stderr)
		return err
	}
	fmt.Fprintf(stdout, "smoke: passed in %s\n", since(total))
	return nil
}

func (s *smoke) runSteps(ctx context.Context) error {
	boot := time.Now()
	for _, st := range smokeSteps {
		timeout := s.set.StepTimeout
		if st.boot {
			timeout = s.set.BootTimeout
		}
		start := time.Now()
		sctx, cancel := context.WithTimeout(ctx, timeout)
		err := st.run(sctx, s)
		cancel()
		if err != nil {
			return fmt.Errorf("smoke: %s: %w", st.name, err)
		}
		fmt.Fprintf(s.out, "smoke: ok   %-65s %6s (%s since boot)\n", st.name, since(start), since(boot))
	}
	return nil
}

// report prints what helps to see why a step failed: the end of the
// serial console and clinicbox's recent stderr.
func (s *smoke) report(ctx context.Context, w io.Writer) {
	fmt.Fprintf(w, "smoke: serial console, last lines:\n%s\n", tail(s.vm.SerialLog, 25))
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	lines, err := s.ui.RecentLog(ctx, clinicboxPath, "stderr")
	if len(lines) > 25 {
		lines = lines[len(lines)-25:]
	}
	fmt.Fprintf(w, "smoke: %s stderr (%v):\n%s\n", clinicboxPath, err, strings.Join(lines, "\n"))
}

// poll calls f every interval until it returns nil, qemu exits or ctx
// ends, and then returns f's last error.
func (s *smoke) poll(ctx context.Context, interval time.Duration, f func() error) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var last error
	for {
		err := f()
		if err == nil {
			return nil
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
