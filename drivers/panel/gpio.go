package panel

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"periph.io/x/conn/v3/driver/driverreg"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/host/v3/gpioioctl"
)

// Pins are BCM line numbers on the 40-pin header; -1 is not wired.
type Pins struct {
	Green, Amber, Red, Buzzer, Button int
}

// ErrNoGPIO means the machine has no GPIO character device.
var ErrNoGPIO = errors.New("no GPIO chip")

// OpenGPIO wires a panel to GPIO lines through the kernel's character
// device. Only the gpioioctl driver is initialized: periph's host.Init
// would also load the bcm283x driver, which maps a Pi 4's registers and is
// wrong on a Pi 5.
func OpenGPIO(p Pins) (Config, error) {
	var cfg Config
	if _, err := driverreg.Init(); err != nil {
		return cfg, fmt.Errorf("panel: gpio: %w", err)
	}
	chip := headerChip()
	if chip == nil {
		return cfg, fmt.Errorf("panel: %w", ErrNoGPIO)
	}
	cfg.Chip = chip.Name() + " (" + chip.Label() + ")"
	out := func(n int) (Output, error) {
		if n < 0 {
			return nil, nil
		}
		l := chip.ByNumber(n)
		if l == nil {
			return nil, fmt.Errorf("panel: GPIO %d is not on %s", n, chip.Name())
		}
		if err := l.Out(gpio.Low); err != nil {
			return nil, fmt.Errorf("panel: GPIO %d: %w", n, err)
		}
		return lineOut{l}, nil
	}
	var err error
	for _, o := range []struct {
		dst *Output
		n   int
	}{{&cfg.Green, p.Green}, {&cfg.Amber, p.Amber}, {&cfg.Red, p.Red}, {&cfg.Buzzer, p.Buzzer}} {
		if *o.dst, err = out(o.n); err != nil {
			return cfg, err
		}
	}
	if p.Button >= 0 {
		l := chip.ByNumber(p.Button)
		if l == nil {
			return cfg, fmt.Errorf("panel: GPIO %d is not on %s", p.Button, chip.Name())
		}
		if err := l.In(gpio.PullUp, gpio.BothEdges); err != nil {
			return cfg, fmt.Errorf("panel: button GPIO %d: %w", p.Button, err)
		}
		cfg.Button = lineIn{l}
	}
	return cfg, nil
}

// headerChip picks the chip that drives the 40-pin header: the SoC's pin
// controller (bcm2835/bcm2711 on a Pi 4, RP1 on a Pi 5).
func headerChip() *gpioioctl.GPIOChip {
	for _, c := range gpioioctl.Chips {
		if l := c.Label(); strings.Contains(l, "pinctrl-bcm") || strings.Contains(l, "pinctrl-rp1") {
			return c
		}
	}
	if len(gpioioctl.Chips) > 0 {
		return gpioioctl.Chips[0]
	}
	return nil
}

type lineOut struct{ l *gpioioctl.GPIOLine }

func (o lineOut) Set(on bool) error { return o.l.Out(gpio.Level(on)) }

type lineIn struct{ l *gpioioctl.GPIOLine }

func (i lineIn) Pressed() bool                          { return i.l.Read() == gpio.Low }
func (i lineIn) WaitForEdge(timeout time.Duration) bool { return i.l.WaitForEdge(timeout) }

// SysfsLED is one of the board's own LEDs (/sys/class/leds/NAME), the
// fallback when no panel is wired: the Pi's ACT (green) and PWR (red).
type SysfsLED struct{ Dir string }

// OpenSysfsLED takes an LED over from its kernel trigger, which would
// otherwise overwrite what the panel sets.
func OpenSysfsLED(dir string) (SysfsLED, error) {
	if err := os.WriteFile(filepath.Join(dir, "trigger"), []byte("none"), 0); err != nil {
		return SysfsLED{}, fmt.Errorf("panel: led %s: %w", filepath.Base(dir), err)
	}
	return SysfsLED{Dir: dir}, nil
}

// Set switches the LED.
func (s SysfsLED) Set(on bool) error {
	v := "0"
	if on {
		v = "1"
	}
	return os.WriteFile(filepath.Join(s.Dir, "brightness"), []byte(v), 0)
}

// BoardLEDs is the fallback panel on the Pi's own LEDs: ACT shows green,
// PWR shows red; there is no amber, so attention blinks green fast.
func BoardLEDs(sysfs string) (Config, error) {
	var cfg Config
	act, err := OpenSysfsLED(filepath.Join(sysfs, "class/leds/ACT"))
	if err != nil {
		return cfg, err
	}
	cfg.Green = act
	if pwr, err := OpenSysfsLED(filepath.Join(sysfs, "class/leds/PWR")); err == nil {
		cfg.Red = pwr
	}
	return cfg, nil
}
