package usb_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clinicbox/clinicbox/drivers/testenv"
	"github.com/clinicbox/clinicbox/drivers/usb"
	"github.com/clinicbox/clinicbox/drivers/usb/usbtest"
	"golang.org/x/sys/unix"
)

// A foreign drive whose ext4 journal needs recovery (pulled while mounted
// elsewhere) is mounted read-only and read without a byte of it changing;
// the journal is replayed only once the box decides to write, and then the
// data it held is there.
func TestKernelReadOnlyLeavesDirtyJournal(t *testing.T) {
	needLoop(t)
	img := dirtyImage(t)
	before := sha(t, img)
	l := usbtest.AttachLoop(t, img)
	m := mountLoop(t, l, usb.MountReadOnly)
	if _, err := os.ReadDir(m.Dir); err != nil {
		t.Fatal(err)
	}
	if err := m.Unmount(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := sha(t, img); got != before {
		t.Fatalf("image SHA-256 after a read-only mount: got %x; want %x (unchanged)", got, before)
	}

	m = mountLoop(t, l, usb.MountReadOnly)
	if err := m.Remount(true); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(m.Dir, "late")); err != nil || string(b) != "late" {
		t.Fatalf("after remounting writable: got %q, %v; want the journal replayed and %q", b, err, "late")
	}
	writeSynced(t, filepath.Join(m.Dir, "x"), "x")
}

// Nothing on a mounted drive is followed through a symbolic link: a link
// on the drive to a file of the box is not a way to read it.
func TestKernelMountDoesNotFollowSymlinks(t *testing.T) {
	needLoop(t)
	img := usbtest.MakeImage(t, usbtest.Image{Type: "ext4"})
	m := mountLoop(t, usbtest.AttachLoop(t, img), usb.Mount)
	os.Symlink("/etc/hostname", filepath.Join(m.Dir, "link"))
	if _, err := os.ReadFile(filepath.Join(m.Dir, "link")); !errors.Is(err, unix.ELOOP) {
		t.Fatalf("reading through a link on the drive: got %v; want ELOOP", err)
	}
}

// dirtyImage returns an ext4 image copied while it was mounted writable
// and just written to: its journal holds a transaction and the superblock
// says needs_recovery, as on a drive pulled from another computer.
func dirtyImage(t *testing.T) string {
	t.Helper()
	dumpe2fs := testenv.NeedCommand(t, "dumpe2fs")
	img := usbtest.MakeImage(t, usbtest.Image{Type: "ext4", Label: "FOREIGN"})
	m := mountLoop(t, usbtest.AttachLoop(t, img), usb.Mount)
	writeSynced(t, filepath.Join(m.Dir, "late"), "late")
	dirty := filepath.Join(t.TempDir(), "dirty.img")
	copyFile(t, img, dirty)
	if err := m.Unmount(context.Background()); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(dumpe2fs, "-h", dirty).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "needs_recovery") {
		t.Fatalf("dumpe2fs -h of the copy: %v; want needs_recovery in\n%s", err, out)
	}
	return dirty
}

// mountLoop mounts the loop device's filesystem with mount until the test
// ends (or the test unmounts it).
func mountLoop(t *testing.T, l *usbtest.Loop, mount func(string, usb.Identity) (*usb.Mounted, error)) *usb.Mounted {
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

func copyFile(t *testing.T, from, to string) {
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

func sha(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}
