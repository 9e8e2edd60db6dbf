package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
