package usb_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/drivers/usb"
	"github.com/clinicbox/clinicbox/drivers/usb/usbtest"
	"golang.org/x/sys/unix"
)

// mountedLoop attaches a fresh ext4 image and mounts it.
func mountedLoop(t *testing.T) (*usbtest.Loop, *usb.Mounted) {
	t.Helper()
	needLoop(t)
	l := usbtest.AttachLoop(t, usbtest.MakeImage(t, usbtest.Image{Type: "ext4", Label: "FATHER"}))
	id, err := usb.Identify(l.Name)
	if err != nil {
		t.Fatal(err)
	}
	m, err := usb.Mount(t.TempDir(), id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(m.Dir, 0) })
	return l, m
}

// TestEjectWaitsWhileBusy holds a file open on the drive: eject must fail
// with the drive still mounted (no lazy unmount), then succeed once closed.
func TestEjectWaitsWhileBusy(t *testing.T) {
	l, m := mountedLoop(t)
	f, err := os.Create(filepath.Join(m.Dir, "open.wal"))
	if err != nil {
		t.Fatal(err)
	}
	x := usb.Ejector{Attempts: 3, Wait: 10 * time.Millisecond}
	ej, err := x.Eject(context.Background(), l.Name, m)
	if !errors.Is(err, unix.EBUSY) || ej != (usb.Ejected{}) {
		t.Fatalf("got %+v, %v; want EBUSY and nothing done", ej, err)
	}
	if _, err := os.Stat(filepath.Join(m.Dir, "lost+found")); err != nil {
		t.Fatalf("drive no longer mounted after a busy eject: %v", err)
	}
	// A cancelled context stops the retries too.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (usb.Ejector{Attempts: 1000, Wait: time.Hour}).Eject(ctx, l.Name, m); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v; want context.Canceled", err)
	}
	f.Close()
	if ej, err = x.Eject(context.Background(), l.Name, m); err != nil || !ej.Unmounted || !ej.Flushed {
		t.Fatalf("got %+v, %v; want unmounted and flushed", ej, err)
	}
}

// TestEjectRefusesOtherMounts: a partition mounted elsewhere stops the eject.
func TestEjectRefusesOtherMounts(t *testing.T) {
	l, m := mountedLoop(t)
	ej, err := usb.Ejector{}.Eject(context.Background(), l.Name)
	if !errors.Is(err, usb.ErrStillMounted) || ej.Flushed {
		t.Fatalf("got %+v, %v; want ErrStillMounted before flushing", ej, err)
	}
	if err := m.Unmount(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestEjectDeletesSCSIDevice flushes a real loop device and deletes it
// through a sysfs tree that gives it a SCSI device, as a USB drive has;
// safe to remove only then.
func TestEjectDeletesSCSIDevice(t *testing.T) {
	l, m := mountedLoop(t)
	var st unix.Stat_t
	if err := unix.Stat(l.Dev, &st); err != nil {
		t.Fatal(err)
	}
	rdev := st.Rdev
	sys := t.TempDir()
	dev := filepath.Join(sys, "devices/usb1/1-1/1-1:1.0/host9/target9:0:0/9:0:0:0")
	disk := filepath.Join(dev, "block", l.Name)
	for p, s := range map[string]string{
		filepath.Join(disk, "uevent"): fmt.Sprintf("MAJOR=%d\nMINOR=%d\nDEVNAME=%s\nDEVTYPE=disk\n", unix.Major(rdev), unix.Minor(rdev), l.Name),
		filepath.Join(disk, "size"):   "65536\n",
		filepath.Join(dev, "delete"):  "",
	} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"class/block/" + l.Name: "../../devices/usb1/1-1/1-1:1.0/host9/target9:0:0/9:0:0:0/block/" + l.Name,
		"block/" + l.Name:       "../devices/usb1/1-1/1-1:1.0/host9/target9:0:0/9:0:0:0/block/" + l.Name,
		filepath.Join("devices/usb1/1-1/1-1:1.0/host9/target9:0:0/9:0:0:0/block", l.Name, "device"): "../../../9:0:0:0",
	} {
		if err := os.MkdirAll(filepath.Join(sys, filepath.Dir(link)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(sys, link)); err != nil {
			t.Fatal(err)
		}
	}
	ej, err := usb.Ejector{Sysfs: sys}.Eject(context.Background(), l.Name, m)
	if err != nil {
		t.Fatal(err)
	}
	if want := (usb.Ejected{Unmounted: true, Flushed: true, Deleted: true}); ej != want || !ej.SafeToRemove() {
		t.Errorf("got %+v (safe %v); want %+v, safe", ej, ej.SafeToRemove(), want)
	}
	if b, _ := os.ReadFile(filepath.Join(dev, "delete")); string(b) != "1" {
		t.Errorf("got %q written to delete; want \"1\"", b)
	}
}
