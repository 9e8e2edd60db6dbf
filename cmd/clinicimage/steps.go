package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
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

// clinicboxStarting waits for clinicbox to say it runs with its settings;
// a settings error it logs instead fails at once.
func clinicboxStarting(ctx context.Context, s *smoke) error {
	const bad = "not backing up until the settings are fixed"
	line, err := s.ui.WaitLog(ctx, clinicboxPath, "stdout", "msg=running", bad)
	if err != nil {
		return err
	}
	if strings.Contains(line, bad) {
		return fmt.Errorf("clinicbox: %s", line)
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

// updateOverNetwork sends a new build of the image to the running box the
// way the README tells the IT person to (clinicimage update, with the
// update password the image was built with), waits for the box to reboot
// into it, and checks that clinicbox runs again with its settings, key
// and rotation from /perm.
func updateOverNetwork(ctx context.Context, s *smoke) error {
	before, err := s.ui.Overview(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := updateBox(ctx, s.root, s.target, s.ui.Password, s.vm.HTTPAddr, io.Discard, s.stderr); err != nil {
		return err
	}
	sent := since(start)
	err = s.poll(ctx, time.Second, func() error {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		o, err := s.ui.Overview(rctx)
		if err != nil {
			return err
		}
		if o.BuildTimestamp == before.BuildTimestamp {
			return fmt.Errorf("still build %s", o.BuildTimestamp)
		}
		if o.PermTotal == 0 {
			return failNowf("after the update /perm (%s) is not mounted", o.PermDev)
		}
		fmt.Fprintf(s.out, "smoke: build %s sent in %s; now running build %s\n", before.BuildTimestamp, sent, o.BuildTimestamp)
		return nil
	})
	if err != nil {
		return err
	}
	if err := clinicboxRunning(ctx, s); err != nil {
		return err
	}
	// Sessions live in memory; the page's password is on /perm.
	if err := s.poll(ctx, time.Second, func() error { return s.box.SignIn(ctx) }); err != nil {
		return err
	}
	return s.pollStatus(ctx, func(st *status.Status) error {
		where, err := boxEmpty(st, s.drive.id)
		if err != nil {
			return err
		}
		fmt.Fprintf(s.out, "smoke: after the update the box still knows %s (%s)\n", s.drive.id, where)
		return nil
	})
}
