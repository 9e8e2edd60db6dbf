package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// piMachine is qemu's Raspberry Pi 3B: a 64-bit Cortex-A53 like the Pi 4
// and 5 the image is for, with the Pi's SD host, USB (dwc2) and GPIO
// (bcm2835) controllers, and 1 GiB of memory.
const piMachine = "raspi3b"

// piBoot is what qemu's Pi boots from instead of the Pi's firmware, which
// it does not run: the kernel and a device tree from the image's boot
// partition, and the command line the firmware would pass from
// cmdline.txt. The root file system is the image's own, on the emulated
// SD card.
type piBoot struct {
	Kernel, DTB string
	// Cmdline is the image's cmdline.txt with the console on the 3B's
	// PL011 UART (see piCmdline).
	Cmdline string
}

// piBootPartition is the FAT partition with the kernel, the device trees
// and cmdline.txt.
const piBootPartition = 1

// extractPiBoot copies the kernel, the device tree dtb and cmdline.txt out
// of the image's boot partition into dir. mtools reads the FAT file system
// in place, without root or loop devices.
func extractPiBoot(ctx context.Context, image, dtb, dir string) (piBoot, error) {
	boot, err := imagePartition(image, piBootPartition)
	if err != nil {
		return piBoot{}, fmt.Errorf("pi boot: %w", err)
	}
	fat := image + "@@" + strconv.FormatInt(boot.Offset, 10)
	b := piBoot{Kernel: filepath.Join(dir, "vmlinuz"), DTB: filepath.Join(dir, dtb)}
	cmdline := filepath.Join(dir, "cmdline.txt")
	for _, c := range []struct{ from, to string }{{"vmlinuz", b.Kernel}, {dtb, b.DTB}, {"cmdline.txt", cmdline}} {
		out, err := exec.CommandContext(ctx, "mcopy", "-n", "-i", fat, "::"+c.from, c.to).CombinedOutput()
		if err != nil {
			return piBoot{}, fmt.Errorf("pi boot: copy %s out of %s: %w: %s", c.from, image, err, strings.TrimSpace(string(out)))
		}
	}
	txt, err := os.ReadFile(cmdline)
	if err != nil {
		return piBoot{}, err
	}
	b.Cmdline = piCmdline(string(txt))
	return b, nil
}

// The 3B's device tree names the PL011 UART serial1, so Linux calls it
// ttyAMA1; qemu's first serial port is that UART. earlycon shows the
// kernel's first messages before the driver takes over.
//
// qemu 7.2's model of the Pi's power management (bcm2835_powermgt) resets
// the board at the first write that arms the watchdog instead of when
// its timeout runs out. gokrazy arms the watchdog at boot, so the board
// would reboot as soon as init starts, again and again; the kernel's
// watchdog driver is kept from starting, and gokrazy runs without it (it
// logs that it could not open the watchdog).
const (
	piConsole    = "console=ttyAMA1,115200"
	piEarlycon   = "earlycon=pl011,0x3f201000"
	piNoWatchdog = "initcall_blacklist=bcm2835_wdt_driver_init"
)

// piCmdline turns the image's cmdline.txt into the command line qemu
// passes: the Pi's firmware would resolve console=serial0 through the
// device tree's aliases, which Linux does not, so the console is named as
// the kernel sees it; and the watchdog is left off. Everything else
// (root=PARTUUID=..., init) stays.
func piCmdline(txt string) string {
	var args []string
	for _, a := range strings.Fields(txt) {
		if strings.HasPrefix(a, "console=serial") {
			continue
		}
		args = append(args, a)
	}
	return strings.Join(append(args, piConsole, piEarlycon, piNoWatchdog), " ")
}

// piUSBBus is the dwc2 controller's bus in qemu's Pi.
const piUSBBus = "usb-bus.0"

// piNetMAC is the usb-net device's address. Linux names a CDC Ethernet
// device with a locally administered address (qemu's default 52:54:...)
// usb0, but gokrazy's DHCP client configures eth0; a universally
// administered address gets eth0, as the Pi's own Ethernet is.
const piNetMAC = "40:54:00:12:34:56"

// qemuArgs is qemu's command line for the Pi: the image as its SD card,
// the kernel booted directly, user networking over a usb-net device on
// the dwc2 controller, the serial console into serial and the QMP
// monitor on qmp. The board's four cores and 1 GiB are fixed.
func (b piBoot) qemuArgs(c vmConfig, serial, netdev, qmp string) []string {
	return []string{
		"-name", "clinicbox", "-M", piMachine, "-accel", "tcg",
		"-m", strconv.Itoa(c.MemoryMiB), "-smp", strconv.Itoa(c.CPUs),
		"-kernel", b.Kernel, "-dtb", b.DTB, "-append", b.Cmdline,
		"-drive", "file=" + c.Image + ",format=raw,if=sd",
		"-display", "none",
		"-netdev", netdev,
		"-device", "usb-net,netdev=net0,mac=" + piNetMAC + ",bus=" + piUSBBus,
		"-serial", "file:" + serial,
		"-qmp", "unix:" + qmp + ",server=on,wait=off",
	}
}
