package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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
}

// VM is a qemu virtual machine booted from a gokrazy image with software
// emulation: user networking restricted to the host, the guest's web
// interface (port 80) forwarded to HTTPAddr on the host's loopback, an xHCI
// controller "xhci" for USB disks, and a QMP monitor.
type VM struct {
	// HTTPAddr is host:port of the guest's web interface.
	HTTPAddr string
	// SerialLog is the file the guest's serial console is written to.
	SerialLog string

	cmd     *exec.Cmd
	mon     *monitor
	exited  chan struct{}
	waitErr error // set before exited is closed
}

// startVM starts qemu and connects to its monitor. Stop must be called.
func startVM(ctx context.Context, c vmConfig) (*VM, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	vm := &VM{
		HTTPAddr:  net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		SerialLog: filepath.Join(c.Dir, "serial.log"),
		exited:    make(chan struct{}),
	}
	qmp := filepath.Join(c.Dir, "qmp.sock")
	args := []string{
		"-name", "clinicbox", "-accel", "tcg", "-no-reboot",
		"-m", strconv.Itoa(c.MemoryMiB), "-smp", strconv.Itoa(c.CPUs),
		"-bios", c.OVMF, "-display", "none", "-vga", "none",
		"-drive", "file=" + c.Image + ",format=raw,if=virtio",
		"-netdev", fmt.Sprintf("user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:%d-:80", port),
		"-device", "virtio-net-pci,netdev=net0",
		"-device", "virtio-rng-pci",
		"-device", "qemu-xhci,id=xhci",
		"-serial", "file:" + vm.SerialLog,
		"-qmp", "unix:" + qmp + ",server=on,wait=off",
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
	return vm, nil
}

// dialMonitor waits for qemu to create its monitor socket.
func (vm *VM) dialMonitor(ctx context.Context, path string) (*monitor, error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(path); err == nil {
			return dialMonitor(ctx, path)
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
// given id on the xHCI controller.
func (vm *VM) PlugUSB(ctx context.Context, id, image string) error {
	out, err := vm.mon.Human(ctx, "drive_add 0 if=none,id="+id+",file="+image+",format=raw")
	if err != nil {
		return err
	}
	if !strings.Contains(out, "OK") {
		return fmt.Errorf("vm: drive_add %s: %s", id, strings.TrimSpace(out))
	}
	_, err = vm.mon.Execute(ctx, "device_add", map[string]string{
		"driver": "usb-storage", "bus": "xhci.0", "drive": id, "id": id,
	})
	return err
}

// UnplugUSB pulls the USB disk with the given id out of the machine, as a
// person pulls a cable.
func (vm *VM) UnplugUSB(ctx context.Context, id string) error {
	_, err := vm.mon.Execute(ctx, "device_del", map[string]string{"id": id})
	return err
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

// freePort returns a TCP port on the loopback that nothing listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
