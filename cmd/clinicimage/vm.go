package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// vmConfig says how to boot a gokrazy image under qemu.
type vmConfig struct {
	Qemu, OVMF, Image string
	MemoryMiB, CPUs   int
	// Paused starts the machine with its CPU stopped (tests of the monitor).
	Paused bool
	// Dir holds the serial log and the monitor socket.
	Dir string
	// Forwards let the guest reach services on the host; none means the
	// guest reaches nothing outside.
	Forwards []guestForward
	// Pi boots qemu's Raspberry Pi instead of a PC (pivm.go); nil means
	// a PC.
	Pi *piBoot
	// Disks are attached from boot on besides the boot disk.
	Disks []vmDisk
}

// guestForward lets the guest reach one service on the host although its
// network is restricted: qemu answers for Guest (an address and port in
// the user network, 10.0.2.0/24) and runs Command for every connection the
// guest opens to it, with the connection as the command's standard input
// and output. A command per connection, rather than qemu's "tcp:" form,
// because that form joins every guest connection into one host stream.
type guestForward struct {
	Guest   string
	Command []string
}

// Ports the guest serves that the host reaches through forwards.
const (
	guestWebUIPort = 80   // gokrazy's web interface
	guestPagesPort = 8080 // the box's own pages and API (cmd/clinicbox -listen)
)

// VM is a qemu virtual machine booted from a gokrazy image with software
// emulation: user networking restricted to the host, the guest's web
// interface (port 80) forwarded to HTTPAddr and the box's pages (port
// 8080) to PagesAddr on the host's loopback, an xHCI controller "xhci" for
// USB disks, and a QMP monitor.
type VM struct {
	// HTTPAddr is host:port of the guest's web interface.
	HTTPAddr string
	// PagesAddr is host:port of the box's pages and API.
	PagesAddr string
	// SerialLog is the file the guest's serial console is written to.
	SerialLog string

	// usbBus is the bus USB disks are plugged into.
	usbBus  string
	cmd     *exec.Cmd
	mon     *monitor
	exited  chan struct{}
	waitErr error // set before exited is closed
}

// startVM starts qemu and connects to its monitor. Stop must be called.
func startVM(ctx context.Context, c vmConfig) (*VM, error) {
	vm := &VM{
		SerialLog: filepath.Join(c.Dir, "serial.log"),
		usbBus:    "xhci.0",
		exited:    make(chan struct{}),
	}
	qmp := filepath.Join(c.Dir, "qmp.sock")
	netdev, err := netdevArg([]int{guestWebUIPort, guestPagesPort}, c.Forwards)
	if err != nil {
		return nil, err
	}
	args := []string{
		"-name", "clinicbox", "-accel", "tcg",
		"-m", strconv.Itoa(c.MemoryMiB), "-smp", strconv.Itoa(c.CPUs),
		"-bios", c.OVMF, "-display", "none", "-vga", "none",
		"-drive", "file=" + c.Image + ",format=raw,if=virtio",
		"-netdev", netdev,
		"-device", "virtio-net-pci,netdev=net0",
		"-device", "virtio-rng-pci",
		"-device", "qemu-xhci,id=xhci",
		"-serial", "file:" + vm.SerialLog,
		"-qmp", "unix:" + qmp + ",server=on,wait=off",
	}
	if c.Pi != nil {
		args, vm.usbBus = c.Pi.qemuArgs(c, vm.SerialLog, netdev, qmp), piUSBBus
	} else {
		args = append(args, diskArgs(c.Disks)...)
	}
	if c.Paused {
		args = append(args, "-S")
	}
	vm.cmd = exec.Command(c.Qemu, args...)
	var stderr bytes.Buffer
	vm.cmd.Stderr = &stderr
	// qemu dies with this program even if Stop is never reached.
	vm.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := vm.cmd.Start(); err != nil {
		return nil, fmt.Errorf("vm: start %s: %w", c.Qemu, err)
	}
	go func() {
		err := vm.cmd.Wait()
		if err != nil && stderr.Len() > 0 {
			err = fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
		}
		vm.waitErr = err
		close(vm.exited)
	}()
	if vm.mon, err = vm.dialMonitor(ctx, qmp); err != nil {
		vm.Stop()
		return nil, err
	}
	if err := vm.learnForwards(ctx); err != nil {
		vm.Stop()
		return nil, err
	}
	return vm, nil
}

// monitorRefused is called when qemu's monitor socket exists but refused
// a connection; tests set it.
var monitorRefused = func() {}

// dialMonitor waits for qemu to create its monitor socket and listen on it:
// the socket file appears when qemu binds it, a moment before it listens,
// and on a busy machine a dial in between is refused.
func (vm *VM) dialMonitor(ctx context.Context, path string) (*monitor, error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(path); err == nil {
			m, err := dialMonitor(ctx, path)
			if !errors.Is(err, syscall.ECONNREFUSED) {
				return m, err
			}
			monitorRefused()
		}
		select {
		case <-tick.C:
		case <-vm.exited:
			return nil, fmt.Errorf("vm: qemu exited: %v", vm.waitErr)
		case <-ctx.Done():
			return nil, fmt.Errorf("vm: wait for monitor: %w", ctx.Err())
		}
	}
}

// Exited is closed when qemu has exited; Err then says how.
func (vm *VM) Exited() <-chan struct{} { return vm.exited }

// Err is qemu's exit status once Exited is closed.
func (vm *VM) Err() error { return vm.waitErr }

// Pid is qemu's process ID.
func (vm *VM) Pid() int { return vm.cmd.Process.Pid }

// Monitor returns the QMP monitor.
func (vm *VM) Monitor() *monitor { return vm.mon }

// PlugUSB hot-plugs the raw disk image file as USB mass storage with the
// given id on the machine's USB controller.
func (vm *VM) PlugUSB(ctx context.Context, id, image string) error {
	out, err := vm.mon.Human(ctx, "drive_add 0 if=none,id="+id+",file="+image+",format=raw")
	if err != nil {
		return err
	}
	if !strings.Contains(out, "OK") {
		return fmt.Errorf("vm: drive_add %s: %s", id, strings.TrimSpace(out))
	}
	// The id doubles as the drive's USB serial number, so that two
	// drives differ as two real ones do.
	_, err = vm.mon.Execute(ctx, "device_add", map[string]string{
		"driver": "usb-storage", "bus": vm.usbBus, "drive": id, "id": id, "serial": id,
	})
	return err
}

// UnplugUSB pulls the USB disk with the given id out of the machine, as a
// person pulls a cable, and waits until qemu has closed its image file:
// after that the file holds everything the guest wrote.
func (vm *VM) UnplugUSB(ctx context.Context, id string) error {
	if _, err := vm.mon.Execute(ctx, "device_del", map[string]string{"id": id}); err != nil {
		return err
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		open, err := vm.driveOpen(ctx, id)
		if err != nil || !open {
			return err
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("vm: %s still open after device_del: %w", id, ctx.Err())
		}
	}
}

// driveOpen reports whether qemu still has the drive with the given id
// (query-block lists it until the unplugged device lets it go).
func (vm *VM) driveOpen(ctx context.Context, id string) (bool, error) {
	ret, err := vm.mon.Execute(ctx, "query-block", nil)
	if err != nil {
		return false, err
	}
	var blocks []struct{ Device string }
	if err := json.Unmarshal(ret, &blocks); err != nil {
		return false, fmt.Errorf("qmp: query-block: %w", err)
	}
	return slices.ContainsFunc(blocks, func(b struct{ Device string }) bool { return b.Device == id }), nil
}

// Stop ends qemu by its process ID: SIGTERM, then SIGKILL after ten
// seconds. It reports an exit that Stop did not cause.
func (vm *VM) Stop() error {
	if vm.mon != nil {
		vm.mon.Close()
	}
	select {
	case <-vm.exited:
		return vm.waitErr
	default:
	}
	vm.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-vm.exited:
	case <-time.After(10 * time.Second):
		vm.cmd.Process.Kill()
		<-vm.exited
	}
	return nil
}

// learnForwards sets HTTPAddr and PagesAddr to the loopback ports qemu
// bound for the forwards to the guest's web interface and pages.
func (vm *VM) learnForwards(ctx context.Context) error {
	out, err := vm.mon.Human(ctx, "info usernet")
	if err != nil {
		return fmt.Errorf("vm: host forwards: %w", err)
	}
	fwd, err := parseHostForwards(out)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		addr  *string
		guest int
	}{{&vm.HTTPAddr, guestWebUIPort}, {&vm.PagesAddr, guestPagesPort}} {
		host, ok := fwd[f.guest]
		if !ok {
			return fmt.Errorf("vm: qemu forwards no host port to the guest's port %d: %q", f.guest, out)
		}
		*f.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(host))
	}
	return nil
}

// parseHostForwards reads the host forwards out of qemu's "info usernet":
// the guest's port to the host port qemu listens on, one line each as
//
//	TCP[HOST_FORWARD]   9       127.0.0.1 44833       10.0.2.15    80     0     0
func parseHostForwards(out string) (map[int]int, error) {
	fwd := map[int]int{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || f[0] != "TCP[HOST_FORWARD]" {
			continue
		}
		host, herr := strconv.Atoi(f[3])
		guest, gerr := strconv.Atoi(f[5])
		if herr != nil || gerr != nil || host <= 0 || host > 65535 || guest <= 0 || guest > 65535 {
			return nil, fmt.Errorf("vm: host forward %q: want host and guest ports", strings.TrimSpace(line))
		}
		if _, dup := fwd[guest]; dup {
			return nil, fmt.Errorf("vm: two host forwards to the guest's port %d", guest)
		}
		fwd[guest] = host
	}
	return fwd, nil
}

// netdevArg is the -netdev value: user networking restricted to the
// host, hostfwd to each guest port from a loopback port that qemu binds
// itself (port 0, read back by learnForwards: a port picked free and
// released could be taken before qemu binds it), and a guestfwd for each
// forward. Forwards are allowed under restrict=on.
func netdevArg(guestPorts []int, fwds []guestForward) (string, error) {
	parts := []string{"user", "id=net0", "restrict=on"}
	for _, g := range guestPorts {
		parts = append(parts, fmt.Sprintf("hostfwd=tcp:127.0.0.1:0-:%d", g))
	}
	for _, f := range fwds {
		host, port, err := net.SplitHostPort(f.Guest)
		if err != nil || net.ParseIP(host).To4() == nil || len(f.Command) == 0 {
			return "", fmt.Errorf("vm: forward %q to %q: want an IPv4 guest address with a port and a command", f.Guest, f.Command)
		}
		quoted := make([]string, len(f.Command))
		for i, a := range f.Command {
			quoted[i] = shellQuote(a)
		}
		parts = append(parts, "guestfwd=tcp:"+host+":"+port+"-cmd:"+strings.Join(quoted, " "))
	}
	for i, p := range parts {
		parts[i] = qemuEscape(p)
	}
	return strings.Join(parts, ","), nil
}

// shellQuote quotes a for the shell-like split qemu's user network applies
// to a guestfwd command (GLib's g_shell_parse_argv).
func shellQuote(a string) string {
	return "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
}
