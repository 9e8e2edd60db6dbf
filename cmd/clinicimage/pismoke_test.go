package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/drivers/testenv"
)

const piSettings = goodSettings + `
smokepi.target: pi
smokepi.qemu: qemu-system-aarch64
smokepi.machine: raspi3b
smokepi.dtb: bcm2710-rpi-3-b.dtb
smokepi.memory_mib: 1024
smokepi.cpus: 4
smokepi.boot_timeout: 8m
smokepi.backup_timeout: 10m
smokepi.step_timeout: 3m
`

func TestParseSmokePi(t *testing.T) {
	s, err := parseSettings(strings.NewReader(piSettings))
	if err != nil {
		t.Fatal(err)
	}
	m, steps, err := smokePlan("smoke-pi", s)
	if err != nil {
		t.Fatal(err)
	}
	if m.Machine != piMachine || m.DTB != "bcm2710-rpi-3-b.dtb" || m.Target != "pi" || m.CPUs != 4 || m.OVMF != "" {
		t.Errorf("got smokepi %+v; want raspi3b, bcm2710-rpi-3-b.dtb, target pi, 4 cpus, no ovmf", m)
	}
	var names []string
	for _, st := range steps {
		names = append(names, st.name)
	}
	after := func(prefix string) string {
		i := slices.IndexFunc(names, func(n string) bool { return strings.HasPrefix(n, prefix) })
		if i < 0 || i+1 >= len(names) {
			return ""
		}
		return names[i+1]
	}
	left := func(n string) bool { return strings.HasPrefix(n, piUpdateStep) || strings.HasPrefix(n, piDisksStep) }
	if len(steps) != len(smokeSteps) || slices.ContainsFunc(names, left) ||
		!strings.HasPrefix(after("box password set"), "panel on the SoC's GPIO chip") || !strings.HasPrefix(after("visits after the backup"), "the host sees the lights follow") {
		t.Errorf("got pi steps %q; want the smoke's but the update and the NVMe and SATA disks, with the two panel checks after the sign-in and the visits", names)
	}
	if m, _, _ := smokePlan("smoke", s); m.Machine != "" || m.Target != "vm" {
		t.Errorf("smoke: got %+v; want the PC smoke", m)
	}
	if s, err := parseSettings(strings.NewReader(goodSettings)); err != nil {
		t.Fatal(err)
	} else if _, _, err := smokePlan("smoke-pi", s); err == nil || !strings.Contains(err.Error(), "smokepi") {
		t.Errorf("without smokepi keys: got %v; want an error naming them", err)
	}
	for _, tc := range []struct{ drop, add, want string }{
		{"smokepi.dtb: bcm2710-rpi-3-b.dtb", "", "set dtb"},
		{"smokepi.machine: raspi3b", "smokepi.machine: raspi4b", "want raspi3b"},
		{"smokepi.target: pi", "smokepi.target: nope", "smokepi.target"},
		{"smokepi.machine: raspi3b", "smokepi.wheels: 4", "unknown key smokepi.wheels"},
	} {
		text := strings.Replace(piSettings, tc.drop, tc.add, 1)
		if _, err := parseSettings(strings.NewReader(text)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q instead of %q: got %v; want an error with %q", tc.add, tc.drop, err, tc.want)
		}
	}
}

// The Pi's firmware resolves console=serial0; qemu's Pi boots without it,
// so the console is the PL011 as Linux names it, and the root stays the
// image's.
func TestPiCmdline(t *testing.T) {
	got := piCmdline("console=tty1 console=serial0,115200 root=PARTUUID=60c24cc1-f3f9-427a-8199-76baa2b60001/PARTNROFF=1 init=/gokrazy/init rootwait panic=10 oops=panic    \n")
	want := "console=tty1 root=PARTUUID=60c24cc1-f3f9-427a-8199-76baa2b60001/PARTNROFF=1 init=/gokrazy/init rootwait panic=10 oops=panic console=ttyAMA1,115200 earlycon=pl011,0x3f201000 initcall_blacklist=bcm2835_wdt_driver_init"
	if got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}

// TestPiVMMonitor starts the real qemu Pi, its CPUs paused, with the Pi
// kernel package's device tree, and plugs and unplugs a USB disk on its
// dwc2 controller through the monitor.
func TestPiVMMonitor(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	vm, dir := startPausedPi(ctx, t)
	defer vm.Stop()
	plugTestDisk(ctx, t, vm, dir, "QEMU USB Network")
	// The GPIO controller's registers, as the host reads them: after reset
	// every line is an input (function 0) and low.
	if err := checkPanelLines(ctx, vm); err == nil || !strings.Contains(err.Error(), "has function 0; want 1") {
		t.Errorf("checkPanelLines before the guest ran: got %v; want lines with function 0", err)
	}
	if lev, err := vm.readPhys(ctx, piGPIOBase+piGPLEV0, 1); err != nil || lev[0] != 0 {
		t.Errorf("GPLEV0 after reset: got %x, %v; want 0", lev, err)
	}
	if err := vm.UnplugUSB(ctx, "usb1"); err != nil {
		t.Fatalf("UnplugUSB: %v", err)
	}
	if err := vm.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
}

// startPausedPi starts the real qemu Pi with its CPUs paused, the Pi
// kernel package's kernel and device tree, and an empty SD card.
func startPausedPi(ctx context.Context, t *testing.T) (*VM, string) {
	t.Helper()
	qemu := testenv.NeedCommand(t, "qemu-system-aarch64")
	testenv.NeedCommand(t, "mkfs.ext4")
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "github.com/gokrazy/kernel.rpi").Output()
	if err != nil {
		t.Fatalf("go list kernel.rpi: %v", err)
	}
	kdir := strings.TrimSpace(string(out))
	dir := t.TempDir()
	sd := filepath.Join(dir, "sd.img")
	if err := os.WriteFile(sd, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	boot := &piBoot{Kernel: filepath.Join(kdir, "vmlinuz"), DTB: filepath.Join(kdir, "bcm2710-rpi-3-b.dtb"), Cmdline: piCmdline("")}
	vm, err := startVM(ctx, vmConfig{Qemu: qemu, Image: sd, MemoryMiB: 1024, CPUs: 4, Paused: true, Dir: dir, Pi: boot})
	if err != nil {
		t.Fatal(err)
	}
	return vm, dir
}

// qemu binds the host ends of its forwards itself (port 0 on its command
// line), and the VM's addresses are the ports the qemu process listens
// on, each forwarded to its guest port as qemu's monitor lists it.
func TestHostForwards(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	vm, _ := startPausedPi(ctx, t)
	defer vm.Stop()
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", vm.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []int{guestWebUIPort, guestPagesPort} {
		if want := fmt.Sprintf("hostfwd=tcp:127.0.0.1:0-:%d", g); !strings.Contains(string(cmdline), want) {
			t.Errorf("qemu's command line has no %s: %q", want, cmdline)
		}
	}
	listen, err := testenv.ListenPorts(vm.Pid())
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, a := range []string{vm.HTTPAddr, vm.PagesAddr} {
		_, p, err := net.SplitHostPort(a)
		n, _ := strconv.Atoi(p)
		if err != nil || n == 0 {
			t.Fatalf("VM address %q: want 127.0.0.1 and a port", a)
		}
		got = append(got, n)
	}
	slices.Sort(got)
	if !slices.Equal(listen, got) {
		t.Errorf("qemu listens on %v; want the VM's addresses %s and %s", listen, vm.HTTPAddr, vm.PagesAddr)
	}
	for _, tc := range []struct{ out, err string }{
		{"Hub -1 (net0):\n  TCP[HOST_FORWARD]   9       127.0.0.1 44833       10.0.2.15    80     0     0\n  TCP[HOST_FORWARD]   9       127.0.0.1 44833       10.0.2.15    80     0     0\n", "two host forwards"},
		{"  TCP[HOST_FORWARD]   9       127.0.0.1 0       10.0.2.15    80     0     0\n", "want host and guest ports"},
		{"  TCP[HOST_FORWARD]   9       127.0.0.1 44833       10.0.2.15    99999     0     0\n", "want host and guest ports"},
	} {
		if _, err := parseHostForwards(tc.out); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("parseHostForwards(%q): got %v; want %q", tc.out, err, tc.err)
		}
	}
}

// The host reads the GPIO controller through the monitor's xp output, and
// compares what it sampled with the panel's mirror on the box's page.
func TestPiGPIOReading(t *testing.T) {
	words, err := parseXP("000000003f200000: 0x00000000 0x00200000 0x00200240\n")
	if err != nil || len(words) != 3 {
		t.Fatalf("parseXP: got %x, %v; want 3 words", words, err)
	}
	for n, want := range map[int]uint32{17: 1, 22: 1, 23: 1, 24: 0, 27: 1, 0: 0} {
		if got := gpioFunction(words, n); got != want {
			t.Errorf("GPIO %d: got function %d; want %d", n, got, want)
		}
	}
	if _, err := parseXP("Cannot access memory\n"); err == nil {
		t.Errorf("parseXP of an error message: got no error")
	}
	amberSteady := lineSamples{n: 10, highs: map[string]int{"amber": 10, "buzzer": 1}}
	for _, tc := range []struct {
		p    status.Panel
		want string
	}{
		{status.Panel{Green: "off", Amber: "steady", Red: "off", Buzzer: "one beep"}, ""},
		{status.Panel{Green: "steady", Amber: "off", Red: "off", Buzzer: "silent"}, "green light (GPIO 17) high in 0 of 10"},
		{status.Panel{Green: "off", Amber: "steady", Red: "fast", Buzzer: "silent"}, "red light"},
		{status.Panel{Green: "off", Amber: "steady", Red: "off", Buzzer: "silent"}, "buzzer (GPIO 23) on in 1 of 10"},
	} {
		err := amberSteady.agrees(tc.p)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: got %v; want %q", tc.p, err, tc.want)
		}
	}
}

// The Pi starts with the clock gokrazy's ntp saved on /perm; a PC has a
// real-time clock and gets no file.
func TestSeedClock(t *testing.T) {
	now := time.Date(2026, 12, 3, 17, 0, 0, 5, time.UTC)
	pi, pc := t.TempDir(), t.TempDir()
	if err := (Smoke{Machine: piMachine}).seedClock(pi, now); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(pi, "home/ntp/ntp-time-at-last-shutdown"))
	var got time.Time
	if err != nil || got.UnmarshalText(b) != nil || !got.Equal(now) {
		t.Errorf("time file: got %q (%v); want %s as ntp reads it", b, err, now)
	}
	if err := (Smoke{}).seedClock(pc, now); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(pc); len(entries) != 0 {
		t.Errorf("a PC's seed got %v; want nothing", entries)
	}
}
