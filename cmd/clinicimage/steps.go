package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// clinicboxPath is the service's binary on the box, as gokrazy names it.
const clinicboxPath = "/user/clinicbox"

// waitWebUI waits for gokrazy's web interface and checks that /perm is
// mounted (the formatted partition).
func waitWebUI(ctx context.Context, s *smoke) error {
	return s.poll(ctx, time.Second, func() error {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		o, err := s.ui.Overview(rctx)
		if err != nil {
			return err
		}
		if o.PermTotal == 0 {
			return fmt.Errorf("/perm (%s) is not mounted", o.PermDev)
		}
		fmt.Fprintf(s.out, "smoke: %s up, kernel %s, /perm on %s (%d MB)\n", o.Hostname, o.Kernel, o.PermDev, o.PermTotal>>20)
		return nil
	})
}

// clinicboxRunning checks that clinicbox runs and stays up: the same
// process for a few seconds, so that a service in a crash loop, which
// gokrazy restarts every second, does not pass.
func clinicboxRunning(ctx context.Context, s *smoke) error {
	const stable = 3 * time.Second
	var pid int
	var since time.Time
	return s.poll(ctx, time.Second, func() error {
		svc, err := s.ui.Service(ctx, clinicboxPath)
		if err != nil {
			return err
		}
		if svc.Stopped || svc.Pid == 0 {
			pid = 0
			return fmt.Errorf("%s not running (stopped %v, pid %d)", clinicboxPath, svc.Stopped, svc.Pid)
		}
		if svc.Pid != pid {
			pid, since = svc.Pid, time.Now()
		}
		if time.Since(since) < stable {
			return fmt.Errorf("%s pid %d up for less than %s", clinicboxPath, pid, stable)
		}
		fmt.Fprintf(s.out, "smoke: %s pid %d, args %q\n", clinicboxPath, svc.Pid, svc.Args)
		return nil
	})
}

func clinicboxStarting(ctx context.Context, s *smoke) error {
	_, err := s.ui.WaitLog(ctx, clinicboxPath, "stdout", "clinicbox: starting")
	return err
}

// usbDiskArrives plugs an ext4 disk image into the xHCI controller and
// waits for the guest kernel to attach it as a SCSI disk, then unplugs it
// and waits for the disconnect. The kernel reports both on the serial
// console.
func usbDiskArrives(ctx context.Context, s *smoke) error {
	disk := filepath.Join(s.dir, "usb1.img")
	if err := makeExt4Disk(ctx, disk, 64<<20, "SMOKE"); err != nil {
		return err
	}
	from := serialSize(s.vm.SerialLog)
	if err := s.vm.PlugUSB(ctx, "usb1", disk); err != nil {
		return err
	}
	at, err := s.waitSerial(ctx, from, "Attached SCSI")
	if err != nil {
		return err
	}
	if err := s.vm.UnplugUSB(ctx, "usb1"); err != nil {
		return err
	}
	_, err = s.waitSerial(ctx, at, "USB disconnect")
	return err
}

// makeExt4Disk writes a sparse disk image of size bytes holding an ext4
// file system with the given label (no partition table, like a drive
// formatted whole).
func makeExt4Disk(ctx context.Context, path string, size int64, label string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", "-L", label, path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mkfs.ext4 %s: %w: %s", path, err, strings.TrimSpace(string(out)))
	}
	return nil
}

func serialSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
