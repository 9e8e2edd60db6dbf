package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
)

// piPanel are the GPIO lines the Pi smoke wires the panel to: the box's
// default lines, written into its settings so that the host knows them.
var piPanel = map[string]int{"green": 17, "amber": 27, "red": 22, "buzzer": 23, "button": 24}

// The host watches the panel through qemu's model of the SoC's GPIO
// controller (bcm2835_gpio): the monitor's xp command reads the
// controller's registers the way the CPU does, so the host sees each
// line's function and the level the guest drove it to. It cannot press
// the button: the model has no input lines (nothing outside the guest can
// set a level), reads every line the guest does not drive as low, and
// implements neither pull-ups nor edge detection, so no edge would reach
// the kernel either.
const (
	piGPIOBase = 0x3f200000 // the controller on the Pi 3's bus
	piGPFSEL0  = 0x00       // function select: 3 bits per line, 10 lines a word
	piGPLEV0   = 0x34       // levels of lines 0 to 31
)

// readPhys reads n 32-bit words at the guest's physical address addr with
// the monitor's xp command.
func (vm *VM) readPhys(ctx context.Context, addr uint64, n int) ([]uint32, error) {
	out, err := vm.mon.Human(ctx, fmt.Sprintf("xp /%dwx %#x", n, addr))
	if err != nil {
		return nil, err
	}
	words, err := parseXP(out)
	if err != nil || len(words) != n {
		return nil, fmt.Errorf("vm: xp %#x: got %q (%v); want %d words", addr, out, err, n)
	}
	return words, nil
}

// parseXP reads the monitor's "ADDRESS: 0xWORD 0xWORD ..." lines.
func parseXP(out string) ([]uint32, error) {
	var words []uint32
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		_, vals, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("no address in %q", line)
		}
		for _, f := range strings.Fields(vals) {
			w, err := strconv.ParseUint(f, 0, 32)
			if err != nil {
				return nil, err
			}
			words = append(words, uint32(w))
		}
	}
	return words, nil
}

// gpioFunction returns line n's function in the GPFSEL words (0 input,
// 1 output, others alternate functions).
func gpioFunction(fsel []uint32, n int) uint32 {
	return fsel[n/10] >> (3 * (n % 10)) & 7
}

// checkPanelLines checks that the panel's lights are outputs and the
// button an input on the guest's GPIO controller.
func checkPanelLines(ctx context.Context, vm *VM) error {
	fsel, err := vm.readPhys(ctx, piGPIOBase+piGPFSEL0, 3)
	if err != nil {
		return err
	}
	for name, n := range piPanel {
		want := uint32(1)
		if name == "button" {
			want = 0
		}
		if got := gpioFunction(fsel, n); got != want {
			return fmt.Errorf("GPIO %d (%s) has function %d; want %d", n, name, got, want)
		}
	}
	return nil
}

// lineSamples records what each panel line did over a while.
type lineSamples struct {
	n        int
	highs    map[string]int
	lastLevs uint32
}

// sampleLines reads the levels every interval for d.
func sampleLines(ctx context.Context, vm *VM, d, interval time.Duration) (lineSamples, error) {
	ls := lineSamples{highs: map[string]int{}}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		lev, err := vm.readPhys(ctx, piGPIOBase+piGPLEV0, 1)
		if err != nil {
			return ls, err
		}
		ls.n++
		ls.lastLevs = lev[0]
		for name, n := range piPanel {
			if lev[0]>>n&1 == 1 {
				ls.highs[name]++
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ls, ctx.Err()
		}
	}
	return ls, nil
}

// agrees says why the sampled lights disagree with the panel's mirror on
// the box's page, or nil: an "off" light was never lit, a "steady" one
// always, a blinking one at least once.
func (ls lineSamples) agrees(p status.Panel) error {
	for _, l := range []struct{ name, want string }{{"green", p.Green}, {"amber", p.Amber}, {"red", p.Red}} {
		name, want := l.name, l.want
		high := ls.highs[name]
		var bad bool
		switch want {
		case "off":
			bad = high != 0
		case "steady":
			bad = high != ls.n
		default:
			bad = high == 0
		}
		if bad {
			return fmt.Errorf("%s light (GPIO %d) high in %d of %d samples; the box's page says %q", name, piPanel[name], high, ls.n, want)
		}
	}
	if p.Buzzer == "silent" && ls.highs["buzzer"] != 0 {
		return fmt.Errorf("buzzer (GPIO %d) on in %d of %d samples; the box's page says silent", piPanel["buzzer"], ls.highs["buzzer"], ls.n)
	}
	return nil
}
