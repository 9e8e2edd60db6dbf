package usbtest

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clinicbox/clinicbox/drivers/testenv"
	"github.com/clinicbox/clinicbox/drivers/usb"
	"golang.org/x/sys/unix"
)

// DirtyImage returns an ext4 image copied while it was mounted writable
// and just written to (a file named "late" holding "late"): its journal
// holds a transaction and its superblock says needs_recovery, as on a
// drive pulled from a computer without being ejected. It skips t (see
// testenv) without root, loop devices or dumpe2fs.
func DirtyImage(t testing.TB) string {
	t.Helper()
	dumpe2fs := testenv.NeedCommand(t, "dumpe2fs")
	img := MakeImage(t, Image{Type: "ext4", Label: "FOREIGN"})
	l := AttachLoop(t, img)
	dir := t.TempDir()
	if err := unix.Mount(l.Dev, dir, "ext4", unix.MS_NOATIME, ""); err != nil {
		t.Fatalf("usbtest: mount %s: %v", l.Dev, err)
	}
	defer unix.Unmount(dir, 0)
	f, err := os.Create(filepath.Join(dir, "late"))
	if err == nil {
		_, err = f.WriteString("late")
	}
	if err == nil {
		err = f.Sync() // commits the journal transaction
	}
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	dirty := filepath.Join(t.TempDir(), "dirty.img")
	copyFile(t, img, dirty)
	out, err := exec.Command(dumpe2fs, "-h", dirty).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "needs_recovery") {
		t.Fatalf("usbtest: dumpe2fs -h of the copy: %v; want needs_recovery in\n%s", err, out)
	}
	return dirty
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// Mount identifies the loop device's filesystem and mounts it with mount
// (usb.Mount or usb.MountReadOnly) under a temporary directory until the
// test ends or unmounts it.
func Mount(t testing.TB, l *Loop, mount func(string, usb.Identity) (*usb.Mounted, error)) *usb.Mounted {
	t.Helper()
	id, err := usb.Identify(l.Name)
	if err != nil {
		t.Fatal(err)
	}
	m, err := mount(filepath.Join(t.TempDir(), "run"), id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Unmount(context.Background()) })
	return m
}
