package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"
)

// smokePlan returns the settings and the steps of "clinicimage NAME":
// smoke boots the smoke target on a PC, smoke-pi the Pi image on qemu's
// Raspberry Pi 3B.
func smokePlan(name string, set *Settings) (Smoke, []step, error) {
	if name != "smoke-pi" {
		return set.Smoke, smokeSteps, nil
	}
	if set.SmokePi == (Smoke{}) {
		return Smoke{}, nil, fmt.Errorf("smoke-pi: gokr-packer.yml has no smokepi.* settings")
	}
	return set.SmokePi, piSmokeSteps(), nil
}

// piUpdateStep names the step the Pi smoke leaves out: an update writes
// the new kernel and command line to the boot partition and reboots, but
// qemu's Pi boots the kernel and command line it was started with (it
// does not run the Pi's firmware), and qemu 7.2 does not emulate the
// watchdog that gokrazy reboots the Pi with.
const piUpdateStep = "updated over the network"

// piDisksStep names the other step the Pi smoke leaves out: qemu's
// Raspberry Pi has no PCI, so no NVMe or AHCI disk can be attached.
const piDisksStep = "NVMe and SATA disks' health"

// piSmokeSteps are smokeSteps without the update over the network and the
// box's own disks, with
// the panel's GPIO checked once the box's page answers (it shows that no
// drive is in: amber) and again after the backup (green).
func piSmokeSteps() []step {
	var steps []step
	for _, st := range smokeSteps {
		if strings.HasPrefix(st.name, piUpdateStep) || strings.HasPrefix(st.name, piDisksStep) {
			continue
		}
		if reflect.ValueOf(st.run).Pointer() == reflect.ValueOf(drillOnBox).Pointer() {
			st = step{"the box drills the drive in its encrypted scratch with the PostgreSQL it carries: passed", st.limit, drillEncryptedOnBox}
		}
		steps = append(steps, st)
		switch reflect.ValueOf(st.run).Pointer() {
		case reflect.ValueOf(boxSignIn).Pointer():
			steps = append(steps, step{"panel on the SoC's GPIO chip; the host sees its lights", stepTimeout, panelOnGPIO})
		case reflect.ValueOf(visitsReachDrive).Pointer():
			steps = append(steps, step{"the host sees the lights follow; every switch succeeded", stepTimeout, panelFollows})
		}
	}
	return steps
}

// panelOnGPIO checks that clinicbox opened the SoC's GPIO chip for the
// panel (its log says which chip and lines, and the button's level it
// read), that the guest's GPIO controller has the lights as outputs and
// the button as an input, and that the lights show what the box's page
// says.
func panelOnGPIO(ctx context.Context, s *smoke) error {
	const onGPIO, notOnGPIO = "front panel on GPIO", "front panel not on GPIO"
	line, err := s.ui.WaitLog(ctx, clinicboxPath, "stdout", onGPIO, notOnGPIO)
	if err != nil {
		return err
	}
	if !strings.Contains(line, onGPIO) || !strings.Contains(line, "pinctrl-bcm2835") {
		return failNowf("clinicbox: %s", line)
	}
	fmt.Fprintf(s.out, "smoke: clinicbox: %s\n", line)
	if err := checkPanelLines(ctx, s.vm); err != nil {
		return failNowf("%w", err)
	}
	return s.lightsAgree(ctx)
}

// panelFollows checks the lights again, in the state the backup left, and
// that clinicbox reported no light or buzzer that failed to switch.
func panelFollows(ctx context.Context, s *smoke) error {
	if err := s.lightsAgree(ctx); err != nil {
		return err
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	lines, err := s.ui.RecentLog(lctx, clinicboxPath, "stdout")
	cancel()
	if err != nil {
		return err
	}
	for _, l := range lines {
		if strings.Contains(l, "front panel:") {
			return failNowf("clinicbox: %s", l)
		}
	}
	return nil
}

// lightsAgree samples the panel's lines from the host for three seconds
// until they agree with the panel's mirror on the box's page, which must
// not change meanwhile.
func (s *smoke) lightsAgree(ctx context.Context) error {
	return s.poll(ctx, time.Second, func() error {
		before, err := s.box.Status(ctx)
		if err != nil {
			return err
		}
		ls, err := sampleLines(ctx, s.vm, 3*time.Second, 50*time.Millisecond)
		if err != nil {
			return err
		}
		after, err := s.box.Status(ctx)
		if err != nil {
			return err
		}
		if before.Panel != after.Panel {
			return fmt.Errorf("the panel changed while the host looked: %+v, then %+v", before.Panel, after.Panel)
		}
		if err := ls.agrees(after.Panel); err != nil {
			return err
		}
		p := after.Panel
		fmt.Fprintf(s.out, "smoke: the host saw green %d, amber %d, red %d of %d samples high: the page's %s/%s/%s (%s)\n",
			ls.highs["green"], ls.highs["amber"], ls.highs["red"], ls.n, p.Green, p.Amber, p.Red, p.Condition)
		return nil
	})
}

// piBoot returns what qemu boots the Pi from, taken out of the image; nil
// for a PC, which boots the image through its firmware.
func (m Smoke) piBoot(ctx context.Context, image, dir string) (*piBoot, error) {
	if m.Machine != piMachine {
		return nil, nil
	}
	fi, err := os.Stat(image)
	if err != nil {
		return nil, err
	}
	if n := fi.Size(); n&(n-1) != 0 {
		return nil, fmt.Errorf("pi boot: %s is %d bytes: qemu's Pi takes SD card images whose size is a power of two (set the target's storage_bytes to one)", image, n)
	}
	b, err := extractPiBoot(ctx, image, m.DTB, dir)
	if err != nil {
		return nil, err
	}
	return &b, nil
}

// piWALSegMiB is the WAL segment size of the Pi smoke's host database.
// qemu's Pi reaches the host through its dwc2 controller's one root port,
// behind a full-speed hub, so the network is slow; with 16 MiB segments
// the box takes in about 32 MB of WAL (whole segments) before its first
// backup is complete, with 1 MiB segments a few MB.
const piWALSegMiB = 1

// walSegMiB returns the WAL segment size of the smoke's host database: 1
// MiB on the Pi (piWALSegMiB), PostgreSQL's default on a PC.
func (m Smoke) walSegMiB() int {
	if m.Machine == piMachine {
		return piWALSegMiB
	}
	return 0
}

// panel returns the GPIO lines of the machine's front panel: piPanel on
// the Pi, nil (none) on a PC.
func (m Smoke) panel() map[string]int {
	if m.Machine == piMachine {
		return piPanel
	}
	return nil
}

// piNTPTimeFile is where gokrazy's ntp keeps the time at the last
// shutdown, relative to /perm; it sets the clock from it at boot.
const piNTPTimeFile = "home/ntp/ntp-time-at-last-shutdown"

// seedClock gives the Pi a clock. The Pi has no real-time clock and sets
// its clock by NTP, which the emulated network (it reaches only the host)
// cannot reach; so the Pi starts as if it had been shut down at now, as
// gokrazy's ntp reads its time file. The clock then lags the host's by
// the time from now to ntp's start. A PC has a real-time clock.
func (m Smoke) seedClock(seed string, now time.Time) error {
	if m.Machine != piMachine {
		return nil
	}
	b, err := now.UTC().MarshalText()
	if err != nil {
		return err
	}
	path := filepath.Join(seed, piNTPTimeFile)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}
