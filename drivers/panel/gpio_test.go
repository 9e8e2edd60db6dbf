package panel

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// The board's LEDs are taken from their kernel triggers, then switched,
// against a fake /sys/class/leds tree.
func TestBoardLEDs(t *testing.T) {
	sys := t.TempDir()
	for _, led := range []string{"ACT", "PWR"} {
		d := filepath.Join(sys, "class/leds", led)
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "trigger"), []byte("[mmc0] none heartbeat"), 0o644)
		os.WriteFile(filepath.Join(d, "brightness"), []byte("0"), 0o644)
	}
	cfg, err := BoardLEDs(sys)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Green == nil || cfg.Red == nil || cfg.Amber != nil {
		t.Fatalf("got %+v; want green on ACT, red on PWR, no amber", cfg)
	}
	if b, _ := os.ReadFile(filepath.Join(sys, "class/leds/ACT/trigger")); string(b) != "none" {
		t.Errorf("ACT trigger %q; want none", b)
	}
	cfg.Green.Set(true)
	if b, _ := os.ReadFile(filepath.Join(sys, "class/leds/ACT/brightness")); string(b) != "1" {
		t.Errorf("ACT brightness %q; want 1", b)
	}
	if _, err := BoardLEDs(t.TempDir()); err == nil {
		t.Errorf("a board without LEDs gave no error")
	}
}

// The real character device where the machine has one (a Pi); elsewhere
// a clear ErrNoGPIO.
func TestOpenGPIO(t *testing.T) {
	if m, _ := filepath.Glob("/dev/gpiochip*"); len(m) == 0 {
		_, err := OpenGPIO(Pins{Green: 17, Amber: 27, Red: 22, Buzzer: 23, Button: 24})
		if !errors.Is(err, ErrNoGPIO) {
			t.Errorf("without a GPIO chip: got %v; want ErrNoGPIO", err)
		}
		return // GPIO exists only on the box; CI checks the refusal above
	}
	if _, err := OpenGPIO(Pins{Green: 17, Amber: 27, Red: 22, Buzzer: 23, Button: 24}); err != nil {
		t.Fatal(err)
	}
}
