package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/drivers/testenv"
	"github.com/clinicbox/clinicbox/drivers/usb"
	"github.com/clinicbox/clinicbox/drivers/usb/usbtest"
)

// On a machine without USB drives, GPIO or board LEDs, hwcheck still runs
// and says plainly what it could not find.
func TestHwcheckSaysWhatIsMissing(t *testing.T) {
	sys := t.TempDir()
	os.MkdirAll(filepath.Join(sys, "class/block"), 0o755)
	var out bytes.Buffer
	if err := runHwcheck(context.Background(), []string{"--sysfs", sys, "--wait", "1ms"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"no USB drives attached", "no GPIO panel", "no board LEDs either"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// With the board's LEDs (a fake sysfs tree), each light is switched on and
// off again, and unwired parts are named.
func TestHwcheckBoardLEDs(t *testing.T) {
	sys := t.TempDir()
	os.MkdirAll(filepath.Join(sys, "class/block"), 0o755)
	for _, led := range []string{"ACT", "PWR"} {
		d := filepath.Join(sys, "class/leds", led)
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "trigger"), []byte("mmc0"), 0o644)
		os.WriteFile(filepath.Join(d, "brightness"), []byte("0"), 0o644)
	}
	var out bytes.Buffer
	if err := runHwcheck(context.Background(), []string{"--sysfs", sys}, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"using the board's own LEDs", "green light: on", "amber light: not wired", "red light: on", "button: not wired"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if b, _ := os.ReadFile(filepath.Join(sys, "class/leds/ACT/brightness")); string(b) != "0" {
		t.Errorf("ACT left at %q; want off after the check", b)
	}
}

// Recording real uevents: a loop device attached while recording shows up
// in the recording (attaching is a "change" of the loop device), in the
// format the drivers/usb tests replay.
func TestHwcheckRecordsUEvents(t *testing.T) {
	testenv.NeedRoot(t)
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		testenv.Skip(t, "no /dev/loop-control")
	}
	img := usbtest.MakeImage(t, usbtest.Image{Type: "ext4", Label: "REC"})
	src, err := usb.OpenKernel()
	if err != nil {
		t.Fatal(err)
	}
	var buf syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := make(chan string, 1024)
	done := make(chan error, 1)
	go func() {
		_, err := recordUEvents(ctx, src, &buf, func(msg []byte) {
			select {
			case seen <- string(msg):
			default:
			}
		})
		done <- err
	}()
	loop := usbtest.AttachLoop(t, img)
	timeout := time.After(time.Minute) // a failure bound, not synchronization
wait:
	for {
		select {
		case m := <-seen:
			if strings.Contains(m, "/block/"+loop.Name+"\x00") {
				break wait
			}
		case <-timeout:
			t.Fatalf("no uevent for %s within a minute; recorded:\n%q", loop.Name, buf.String())
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "rec.uevents")
	if err := os.WriteFile(path, []byte(buf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	msgs, err := usbtest.ReadRecording(path)
	if err != nil || len(msgs) == 0 {
		t.Fatalf("recording: %v, %d messages", err, len(msgs))
	}
	found := false
	for _, m := range msgs {
		if strings.Contains(string(m), "DEVPATH=/devices/virtual/block/"+loop.Name+"\x00") {
			found = true
		}
	}
	if !found {
		t.Errorf("replayed recording lacks %s's event", loop.Name)
	}
}
