package usb_test

import (
	"context"
	"errors"
	"golang.org/x/sys/unix"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/drivers/testenv"
	"github.com/clinicbox/clinicbox/drivers/usb"
	"github.com/clinicbox/clinicbox/drivers/usb/usbtest"
)

// needLoop skips unless loop devices can be attached here.
func needLoop(t *testing.T) {
	t.Helper()
	testenv.NeedRoot(t)
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		testenv.Skip(t, "no /dev/loop-control")
	}
}

// kernelWatcher runs a Watcher on the real kernel's uevents until the test ends.
// With buffered, Run never waits for the test, so each event is judged
// (its device's size read from sysfs) as soon as the kernel sends it.
func kernelWatcher(t *testing.T, cfg usb.Config, buffered bool) (chan usb.Event, *usb.Watcher) {
	t.Helper()
	w, err := usb.NewWatcher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan usb.Event)
	if buffered {
		out = make(chan usb.Event, 4096)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) && !errors.Is(err, os.ErrClosed) {
			t.Errorf("Run: got %v; want context.Canceled", err)
		}
	})
	return out, w
}

// waitFor returns the first event about name of the given kind, skipping
// events about other devices (other tests may use loop devices too).
func waitFor(t *testing.T, out <-chan usb.Event, name string, kind usb.Kind) usb.Event {
	t.Helper()
	deadline := time.After(testenv.Patience(t))
	for {
		select {
		case ev := <-out:
			if ev.Name == name && ev.Kind == kind {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s event for %s", kind, name)
		}
	}
}

// TestKernelLoopDrive runs a drive's whole life on a real loop device: its
// uevent, identity, mount, a write, eject, detach, and the removal event.
func TestKernelLoopDrive(t *testing.T) {
	needLoop(t)
	const uuid = "3f1c2a5e-8b0d-4c7e-9a61-2d5f0e4b7c19"
	img := usbtest.MakeImage(t, usbtest.Image{Type: "ext4", Label: "CLINIC-SON", ID: uuid})
	out, _ := kernelWatcher(t, usb.Config{}, true)
	l := usbtest.AttachLoop(t, img)

	ev := waitFor(t, out, l.Name, usb.Added)
	if ev.DevNode != l.Dev || !ev.IsDisk() || ev.Size != 32<<20 {
		t.Errorf("got %+v; want disk %s of %d bytes", ev, l.Dev, 32<<20)
	}
	id, err := usb.Identify(l.Name)
	if err != nil {
		t.Fatal(err)
	}
	want := usb.Filesystem{Type: "ext4", Label: "CLINIC-SON", UUID: uuid}
	if id.FS != want || id.USB != nil || id.DevNode != l.Dev || id.Size != 32<<20 {
		t.Fatalf("got %+v (USB %v); want FS %+v, no USB, %s", id, id.USB, want, l.Dev)
	}

	m, err := usb.Mount(filepath.Join(t.TempDir(), "run"), id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Unmount(context.Background()) })
	writeSynced(t, filepath.Join(m.Dir, "backup.json"), "{}\n")

	ej, err := usb.Ejector{}.Eject(context.Background(), l.Name, m)
	if err != nil {
		t.Fatal(err)
	}
	if want := (usb.Ejected{Unmounted: true, Flushed: true, NoDelete: true}); ej != want || ej.SafeToRemove() {
		t.Errorf("got %+v (safe %v); want %+v, not safe until detached", ej, ej.SafeToRemove(), want)
	}
	if _, err := os.Stat(m.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("mount point %s: got %v; want it removed", m.Dir, err)
	}

	if err := l.Detach(); err != nil {
		t.Fatal(err)
	}
	gone := waitFor(t, out, l.Name, usb.Removed)
	if gone.Pulled || !gone.MediaChange || gone.Action != "change" {
		t.Errorf("got %+v; want a media change, not pulled", gone)
	}

	// The data reached the image: attach it again and read the file.
	l2 := usbtest.AttachLoop(t, img)
	waitFor(t, out, l2.Name, usb.Added)
	id2, err := usb.Identify(l2.Name)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := usb.Mount(filepath.Join(t.TempDir(), "run"), id2)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Unmount(context.Background())
	if b, err := os.ReadFile(filepath.Join(m2.Dir, "backup.json")); err != nil || string(b) != "{}\n" {
		t.Errorf("got %q, %v after remount; want %q", b, err, "{}\n")
	}
}

func writeSynced(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestKernelOverflowRescans fills a tiny receive buffer with real uevents
// while the consumer is not reading, detaches a loop device meanwhile, and
// expects the Watcher to find the removal by reading sysfs again.
func TestKernelOverflowRescans(t *testing.T) {
	needLoop(t)
	img := usbtest.MakeImage(t, usbtest.Image{Type: "ext4"})
	l := usbtest.AttachLoop(t, img)
	out, _ := kernelWatcher(t, usb.Config{RecvBuffer: 1}, false)
	waitFor(t, out, l.Name, usb.Added)
	// Not reading now: Run blocks on its next event and the socket fills.
	ue := filepath.Join("/sys/class/block", l.Name, "uevent")
	for range 300 {
		if err := os.WriteFile(ue, []byte("change"), 0o200); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Detach(); err != nil {
		t.Fatal(err)
	}
	ev := waitFor(t, out, l.Name, usb.Removed)
	if ev.Action != "scan" {
		t.Errorf("got removal by %q; want by a rescan after the overflow", ev.Action)
	}
}

func TestKernelCloseReturnsPromptly(t *testing.T) {
	testenv.NeedRoot(t)
	w, err := usb.NewWatcher(usb.Config{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	out := make(chan usb.Event, 1024)
	go func() { done <- w.Run(context.Background(), out) }()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("got %v; want an error wrapping os.ErrClosed", err)
		}
	case <-time.After(testenv.Patience(t)):
		t.Fatal("Run still blocked after Close")
	}
}

// A drive is first mounted read-only, to read its identity before anything
// decides it may be written; only then is it remounted writable.
func TestKernelMountReadOnlyThenRemount(t *testing.T) {
	needLoop(t)
	img := usbtest.MakeImage(t, usbtest.Image{Type: "ext4", Label: "CLINIC-RO", ID: "0c7c1f2e-1111-4c7e-9a61-2d5f0e4b7c19"})
	l := usbtest.AttachLoop(t, img)
	id, err := usb.Identify(l.Name)
	if err != nil {
		t.Fatal(err)
	}
	m, err := usb.MountReadOnly(filepath.Join(t.TempDir(), "run"), id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Unmount(context.Background()) })
	if err := os.WriteFile(filepath.Join(m.Dir, "x"), []byte("x"), 0o644); !errors.Is(err, unix.EROFS) {
		t.Fatalf("write on a read-only mount: got %v; want EROFS", err)
	}
	if err := m.Remount(true); err != nil {
		t.Fatal(err)
	}
	writeSynced(t, filepath.Join(m.Dir, "x"), "x")
	if err := m.Remount(false); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(m.Dir, "y"), []byte("y"), 0o644); !errors.Is(err, unix.EROFS) {
		t.Fatalf("write after remounting read-only: got %v; want EROFS", err)
	}
}

// A service killed while its drive is mounted writable leaves the mount
// behind; the restarted service mounts the drive again at the same place.
// The kernel refuses a read-only mount of a device mounted writable, so
// the mount left over must be taken down first, its data kept.
func TestKernelMountAfterKilledRun(t *testing.T) {
	needLoop(t)
	img := usbtest.MakeImage(t, usbtest.Image{Type: "ext4", Label: "CLINIC-KILL"})
	l := usbtest.AttachLoop(t, img)
	id, err := usb.Identify(l.Name)
	if err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(t.TempDir(), "run")
	old, err := usb.Mount(run, id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(old.Dir, unix.MNT_DETACH) })
	writeSynced(t, filepath.Join(old.Dir, "x"), "before the kill")
	// The killed run never unmounts; the next one mounts again.
	m, err := usb.MountReadOnly(run, id)
	if err != nil {
		t.Fatalf("mount after a killed run: %v", err)
	}
	t.Cleanup(func() { m.Unmount(context.Background()) })
	if b, err := os.ReadFile(filepath.Join(m.Dir, "x")); err != nil || string(b) != "before the kill" {
		t.Errorf("file written before the kill: got %q, %v; want %q", b, err, "before the kill")
	}
	if err := m.Remount(true); err != nil {
		t.Fatalf("remount writable: %v", err)
	}
}
