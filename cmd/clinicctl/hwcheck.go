package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/clinicbox/clinicbox/drivers/panel"
	"github.com/clinicbox/clinicbox/drivers/smart"
	"github.com/clinicbox/clinicbox/drivers/usb"
)

// runHwcheck checks the box's hardware as a new owner would: which drives
// are attached (USB identity, filesystem, SMART verdict), then each light,
// the buzzer and the button. With --record it saves SMART pages and
// identities as test fixtures.
func runHwcheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("hwcheck", stderr)
	sysfs := fs.String("sysfs", "/sys", "sysfs root")
	record := fs.String("record", "", "directory to save SMART pages and drive identities in, as test fixtures")
	wait := fs.Duration("wait", 15*time.Second, "how long to wait for the button")
	uevents := fs.Duration("uevents", 0, "with --record, record kernel uevents this long: plug and unplug a drive meanwhile")
	green := fs.Int("green", 17, "BCM GPIO of the green LED")
	amber := fs.Int("amber", 27, "BCM GPIO of the amber LED")
	red := fs.Int("red", 22, "BCM GPIO of the red LED")
	buzzer := fs.Int("buzzer", 23, "BCM GPIO of the buzzer")
	button := fs.Int("button", 24, "BCM GPIO of the button")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *record != "" {
		if err := os.MkdirAll(*record, 0o755); err != nil {
			return err
		}
		if err := hwRecordUEvents(ctx, *record, *uevents, stdout); err != nil {
			return err
		}
	}
	fmt.Fprintln(stdout, "Drives:")
	if hwDrives(ctx, *sysfs, *record, stdout) == 0 {
		fmt.Fprintln(stdout, "  no USB drives attached: plug one in and run hwcheck again")
	}
	fmt.Fprintln(stdout, "Front panel:")
	cfg, ok := hwPanel(*sysfs, panel.Pins{Green: *green, Amber: *amber, Red: *red, Buzzer: *buzzer, Button: *button}, stdout)
	if !ok {
		return nil
	}
	hwOutputs(ctx, cfg, stdout)
	hwButton(ctx, cfg.Button, *wait, stdout)
	return nil
}

// hwRecordUEvents records the kernel's uevents for d into the fixture
// directory, while someone plugs a drive in and takes it out; zero d
// records nothing.
func hwRecordUEvents(ctx context.Context, dir string, d time.Duration, stdout io.Writer) error {
	if d <= 0 {
		return nil
	}
	f, err := os.Create(filepath.Join(dir, "hotplug.uevents"))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Recording uevents for %v: plug a drive in and take it out now.\n", d)
	src, err := usb.OpenKernel()
	if err != nil {
		f.Close()
		return fmt.Errorf("hwcheck: uevents: %w", err)
	}
	rctx, cancel := context.WithTimeout(ctx, d)
	n, err := recordUEvents(rctx, src, f, nil)
	cancel()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "  %d uevents recorded in %s\n", n, f.Name())
	return nil
}

// hwPanel opens the GPIO panel, or the board's own LEDs without one; ok is
// false when there is neither.
func hwPanel(sysfs string, pins panel.Pins, stdout io.Writer) (panel.Config, bool) {
	cfg, err := panel.OpenGPIO(pins)
	if err == nil {
		return cfg, true
	}
	fmt.Fprintf(stdout, "  no GPIO panel: %v\n", err)
	if cfg, err = panel.BoardLEDs(sysfs); err != nil {
		fmt.Fprintf(stdout, "  no board LEDs either: %v\n", err)
		return cfg, false
	}
	fmt.Fprintln(stdout, "  using the board's own LEDs")
	return cfg, true
}

// hwOutputs turns each light and the buzzer on for a moment.
func hwOutputs(ctx context.Context, cfg panel.Config, stdout io.Writer) {
	for _, o := range []struct {
		name string
		out  panel.Output
		on   time.Duration
	}{{"green light", cfg.Green, time.Second}, {"amber light", cfg.Amber, time.Second}, {"red light", cfg.Red, time.Second}, {"buzzer", cfg.Buzzer, 200 * time.Millisecond}} {
		if o.out == nil {
			fmt.Fprintf(stdout, "  %s: not wired\n", o.name)
			continue
		}
		fmt.Fprintf(stdout, "  %s: on for %v (watch or listen)\n", o.name, o.on)
		o.out.Set(true)
		select {
		case <-time.After(o.on):
		case <-ctx.Done():
		}
		o.out.Set(false)
	}
}

// hwButton waits up to wait for a press of the button.
func hwButton(ctx context.Context, button panel.Input, wait time.Duration, stdout io.Writer) {
	if button == nil {
		fmt.Fprintln(stdout, "  button: not wired")
		return
	}
	fmt.Fprintf(stdout, "  button: press it within %v\n", wait)
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if button.WaitForEdge(time.Until(deadline)) && button.Pressed() {
			fmt.Fprintln(stdout, "  button: pressed, it works")
			return
		}
	}
	fmt.Fprintln(stdout, "  button: no press seen; check its wiring (GPIO to button to GND)")
}

// hwDrives lists the USB disks and their health; it returns how many.
func hwDrives(ctx context.Context, sysfs, record string, stdout io.Writer) int {
	ents, _ := os.ReadDir(filepath.Join(sysfs, "class/block"))
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	x := usb.Identifier{Sysfs: sysfs}
	checker := &smart.Checker{}
	n := 0
	for _, name := range names {
		id, err := x.Identify(name)
		if err != nil || id.USB == nil {
			continue
		}
		n++
		fmt.Fprintf(stdout, "  %s: %s %s (bridge %s, serial %q), %d MB, filesystem %q label %q\n",
			id.DevNode, id.USB.Manufacturer, id.USB.ProductName, id.USB.Bridge, id.USB.Serial, id.Size>>20, id.FS.Type, id.FS.Label)
		if id.Partition != 0 {
			continue
		}
		r := checker.Check(ctx, id.DevNode, id.USB.Bridge)
		fmt.Fprintf(stdout, "    health: %s", r.Verdict)
		for _, why := range r.Reasons {
			fmt.Fprintf(stdout, "; %s", why)
		}
		fmt.Fprintln(stdout)
		if record != "" {
			b, _ := json.MarshalIndent(id, "", "  ")
			os.WriteFile(filepath.Join(record, name+".identity.json"), b, 0o644)
			if err := smart.Record(id.DevNode, record, name); err != nil {
				fmt.Fprintf(stdout, "    SMART pages not recorded: %v\n", err)
			} else {
				fmt.Fprintf(stdout, "    SMART pages recorded in %s\n", record)
			}
		}
	}
	return n
}

func init() {
	commands["hwcheck"] = command{runHwcheck, "hwcheck [--record DIR] [--wait D] [--green N ...]   (drives, health, lights, buzzer, button)"}
}

// recordUEvents writes raw kernel uevents, in drivers/usb's fixture format
// (each message followed by a newline), until ctx ends. seen, when set,
// gets each message too. It closes src.
func recordUEvents(ctx context.Context, src usb.Source, w io.Writer, seen func([]byte)) (int, error) {
	defer src.Close()
	stop := context.AfterFunc(ctx, func() { src.Close() })
	defer stop()
	n := 0
	for {
		msg, err := src.Next()
		if errors.Is(err, usb.ErrOverflow) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return n, nil
			}
			return n, err
		}
		if _, err := w.Write(append(msg, '\n')); err != nil {
			return n, err
		}
		n++
		if seen != nil {
			seen(msg)
		}
	}
}
