package fscrypt_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/clinicbox/clinicbox/drivers/fscrypt"
	"github.com/clinicbox/clinicbox/drivers/usb/usbtest"
	"golang.org/x/sys/unix"
)

// mountImage formats an ext4 image with mkfs options, attaches and mounts it.
func mountImage(t *testing.T, opts ...string) (img, dir string, l *usbtest.Loop) {
	t.Helper()
	img = usbtest.MakeImage(t, usbtest.Image{Type: "ext4", Size: 64 << 20, Options: opts})
	l = usbtest.AttachLoop(t, img)
	dir = t.TempDir()
	if err := unix.Mount(l.Dev, dir, "ext4", unix.MS_NOATIME, ""); err != nil {
		t.Fatalf("mount: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, 0) })
	return img, dir, l
}

// writeSynced writes b to p and makes sure it reached the device.
func writeSynced(t *testing.T, p string, b []byte) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// A power cut (the filesystem shut down without another write) leaves the
// encrypted directory's contents on the device, but none of its plaintext:
// a marker written there in clear is nowhere on the raw image, while the
// same marker outside it is. Remounted, Sweep deletes what is left.
func TestPowerCutLeavesNoPlaintext(t *testing.T) {
	img, dir, l := mountImage(t, "-O", "encrypt")
	d, err := fscrypt.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	secret := bytes.Repeat([]byte("PATIENT-MARKER-7c1f "), 400)
	clear := bytes.Repeat([]byte("CLEAR-MARKER-2b9e "), 400)
	writeSynced(t, filepath.Join(d.Path, "patients"), secret)
	writeSynced(t, filepath.Join(dir, "outside"), clear)
	if got, err := os.ReadFile(filepath.Join(d.Path, "patients")); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("reading back the encrypted file: %v", err)
	}
	usbtest.CutPower(t, dir)
	if err := unix.Unmount(dir, 0); err != nil {
		t.Fatal(err)
	}
	if err := l.Detach(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte("CLEAR-MARKER-2b9e")) {
		t.Fatal("the marker written outside the encrypted directory is not on the image: the search proves nothing")
	}
	if bytes.Contains(raw, []byte("PATIENT-MARKER-7c1f")) {
		t.Fatal("plaintext from the encrypted directory is on the image after the power cut")
	}
	l2 := usbtest.AttachLoop(t, img)
	if err := unix.Mount(l2.Dev, dir, "ext4", unix.MS_NOATIME, ""); err != nil {
		t.Fatalf("mount again: %v", err)
	}
	if err := fscrypt.Sweep(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Sweep: %v; want the directory gone", err)
	}
}

// Remove deletes the directory and its key: a second directory's key is a
// new one, and the filesystem has no directory left.
func TestRemove(t *testing.T) {
	_, dir, _ := mountImage(t, "-O", "encrypt")
	d, err := fscrypt.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	writeSynced(t, filepath.Join(d.Path, "f"), []byte("x"))
	if err := d.Remove(); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "clinicbox-scratch-*")); len(left) > 0 {
		t.Errorf("left: %v", left)
	}
}

// A filesystem made without the encrypt feature is refused with
// ErrUnsupported, and no directory is left behind.
func TestUnsupportedFilesystem(t *testing.T) {
	_, dir, _ := mountImage(t, "-O", "^encrypt")
	_, err := fscrypt.New(dir)
	if !errors.Is(err, fscrypt.ErrUnsupported) {
		t.Fatalf("got %v; want ErrUnsupported", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "clinicbox-scratch-*")); len(left) > 0 {
		t.Errorf("left: %v", left)
	}
}
