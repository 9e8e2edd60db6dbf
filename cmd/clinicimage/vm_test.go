package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/drivers/testenv"
)

// TestVMMonitor starts the real qemu with the smoke test's machine, its
// CPU paused, and plugs and unplugs a USB disk through the monitor.
func TestVMMonitor(t *testing.T) {
	qemu := testenv.NeedCommand(t, "qemu-system-x86_64")
	const ovmf = "/usr/share/ovmf/OVMF.fd"
	if _, err := os.Stat(ovmf); err != nil {
		testenv.Skip(t, "OVMF not installed")
	}
	testenv.NeedCommand(t, "mkfs.ext4")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	boot := filepath.Join(dir, "boot.img")
	if err := os.WriteFile(boot, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	vm, err := startVM(ctx, vmConfig{Qemu: qemu, OVMF: ovmf, Image: boot, MemoryMiB: 128, CPUs: 1, Paused: true, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			vm.Stop()
		}
	})
	plugTestDisk(ctx, t, vm, dir)
	if err := vm.PlugUSB(ctx, "usb2", filepath.Join(dir, "missing.img")); err == nil {
		t.Errorf("PlugUSB of a missing file: got no error")
	}
	if _, err := vm.Monitor().Execute(ctx, "no-such-command", nil); err == nil || !strings.Contains(err.Error(), "CommandNotFound") {
		t.Errorf("got %v; want CommandNotFound", err)
	}
	if err := vm.UnplugUSB(ctx, "usb1"); err != nil {
		t.Fatalf("UnplugUSB: %v", err)
	}
	usb, err := vm.Monitor().Human(ctx, "info usb")
	if err != nil || strings.Contains(usb, "usb1") {
		t.Errorf("info usb after unplugging: got %q, %v; want no usb1", usb, err)
	}
	if err := vm.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	stopped = true
	select {
	case <-vm.Exited():
	default:
		t.Fatalf("Stop returned before qemu exited")
	}
	if err := syscall.Kill(vm.Pid(), 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kill -0 %d after Stop: got %v; want ESRCH", vm.Pid(), err)
	}
}

// plugTestDisk plugs a small ext4 disk into vm as usb1 and checks that
// qemu lists it beside the devices named by also.
func plugTestDisk(ctx context.Context, t *testing.T, vm *VM, dir string, also ...string) {
	t.Helper()
	disk := filepath.Join(dir, "usb.img")
	if err := makeExt4Disk(ctx, disk, 16<<20, "T"); err != nil {
		t.Fatal(err)
	}
	if err := vm.PlugUSB(ctx, "usb1", disk); err != nil {
		t.Fatalf("PlugUSB: %v", err)
	}
	usb, err := vm.Monitor().Human(ctx, "info usb")
	for _, want := range append(also, "ID: usb1") {
		if err != nil || !strings.Contains(usb, want) {
			t.Errorf("info usb after plugging: got %q, %v; want %q", usb, err, want)
		}
	}
}
