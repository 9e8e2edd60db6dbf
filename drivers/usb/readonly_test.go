package usb_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"testing"

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
	img := usbtest.DirtyImage(t)
	before := sha(t, img)
	l := usbtest.AttachLoop(t, img)
	m := usbtest.Mount(t, l, usb.MountReadOnly)
	if _, err := os.ReadDir(m.Dir); err != nil {
		t.Fatal(err)
	}
	if err := m.Unmount(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := sha(t, img); got != before {
		t.Fatalf("image SHA-256 after a read-only mount: got %x; want %x (unchanged)", got, before)
	}

	m = usbtest.Mount(t, l, usb.MountReadOnly)
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
	m := usbtest.Mount(t, usbtest.AttachLoop(t, img), usb.Mount)
	os.Symlink("/etc/hostname", filepath.Join(m.Dir, "link"))
	if _, err := os.ReadFile(filepath.Join(m.Dir, "link")); !errors.Is(err, unix.ELOOP) {
		t.Fatalf("reading through a link on the drive: got %v; want ELOOP", err)
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
