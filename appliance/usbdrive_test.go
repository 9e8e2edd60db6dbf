package appliance

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/hardware"
	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/drivers/testenv"
	"github.com/clinicbox/clinicbox/drivers/usb"
	"github.com/clinicbox/clinicbox/drivers/usb/usbtest"
	"github.com/clinicbox/clinicbox/rotation"
)

// A real drive's life on a loop device and real kernel uevents: found by
// the watcher, mounted read-only, offered for enrollment, enrolled, backed
// up and streamed to, ejected (unmounted and flushed), detached; the
// image then holds a repository that verifies.
func TestLoopDriveLife(t *testing.T) {
	testenv.NeedRoot(t)
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		testenv.Skip(t, "no /dev/loop-control")
	}
	img := usbtest.MakeImage(t, usbtest.Image{Type: "ext4", Label: "CLINIC-SON", ID: "6a1d2c3e-4b5f-4c7e-9a61-2d5f0e4b7c19", Size: 256 << 20})
	l := usbtest.AttachLoop(t, img)
	src := &hardware.USBDrives{RunDir: filepath.Join(t.TempDir(), "run"), Accept: func(id usb.Identity) bool { return id.Name == l.Name }}
	r := newRig(t, time.Date(2026, 3, 2, 7, 0, 0, 0, mustLoc(t, "America/Chicago")), func(c *Config) { c.Drives = src })

	st := r.wait("unknown drive", func(st status.Status) bool {
		return st.InBox != nil && st.InBox.Decision == string(rotation.UnknownDrive)
	})
	if st.InBox.Writable {
		t.Fatalf("an unknown drive is writable")
	}
	if err := r.a.Do(context.Background(), ActEnroll, "", "test"); err != nil {
		t.Fatal(err)
	}
	r.wait("enrolled and streaming", func(st status.Status) bool {
		return st.InBox != nil && st.InBox.Activity == "streaming" && verifiedBackups(st, "Son") == 1
	})
	r.workload(20)
	if err := r.a.Do(context.Background(), ActEject, "", "test"); err != nil {
		t.Fatal(err)
	}
	r.wait("safe to remove", func(st status.Status) bool { return st.InBox != nil && st.InBox.Activity == "safe to remove" })
	if err := l.Detach(); err != nil {
		t.Fatal(err)
	}
	r.wait("drive gone", func(st status.Status) bool { return st.InBox == nil })
	r.stop()

	// Read the image again, read-only, and verify what is on it.
	l2 := usbtest.AttachLoop(t, img)
	id, err := usb.Identify(l2.Name)
	if err != nil {
		t.Fatal(err)
	}
	m, err := usb.MountReadOnly(filepath.Join(t.TempDir(), "check"), id)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Unmount(context.Background())
	repo, err := archive.OpenFirstUse(filepath.Join(m.Dir, repoDir))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := repo.Verify(context.Background(), archive.VerifyOptions{Identities: []age.Identity{r.a.key.Identity}})
	if err != nil || !rep.OK() {
		t.Fatalf("the drive's repository does not verify: %v %v", err, rep.Problems)
	}
	if _, err := os.Stat(filepath.Join(m.Dir, identityFile)); err != nil {
		t.Errorf("no identity file on the enrolled drive: %v", err)
	}
	entries, _ := r.a.Custody()
	if last := entries[len(entries)-1]; last.Decision != rotation.Ejected {
		t.Errorf("last custody entry %q; want the safe removal", last.Decision)
	}
}

// The kernel gives a detached loop device's number to the next image (as
// it gives a pulled disk's sdX to the next disk), and a fast swap reaches
// the box as a change of that device rather than a removal and an
// addition. A drive is who its filesystem and serial say, not its device
// name: another image of another size at the enrolled drive's number is a
// new, unknown drive, and the enrolled drive attached again at another
// number is itself.
func TestLoopNumberReused(t *testing.T) {
	testenv.NeedRoot(t)
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		testenv.Skip(t, "no /dev/loop-control")
	}
	son := usbtest.MakeImage(t, usbtest.Image{Type: "ext4", Label: "CLINIC-SON", ID: "7b2e3d4f-5c6a-4d8e-9b72-3e6f1a5c8d20", Size: 256 << 20})
	other := usbtest.MakeImage(t, usbtest.Image{Type: "ext4", Label: "CLINIC-SON", ID: "8c3f4e5a-6d7b-4e9f-8c83-4f7a2b6d9e31", Size: 160 << 20})
	blank := filepath.Join(t.TempDir(), "blank.img")
	if err := os.WriteFile(blank, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	// Other tests attach loop devices too: take only this test's images.
	ours := func(id usb.Identity) bool {
		b, _ := os.ReadFile(filepath.Join("/sys/block", id.Name, "loop/backing_file"))
		f := strings.TrimSpace(string(b))
		return f == son || f == other
	}
	src := &hardware.USBDrives{RunDir: filepath.Join(t.TempDir(), "run"), Accept: ours}
	l := usbtest.AttachLoop(t, son)
	r := newRig(t, time.Date(2026, 3, 2, 7, 0, 0, 0, mustLoc(t, "America/Chicago")), func(c *Config) { c.Drives = src })
	r.wait("unknown drive", func(st status.Status) bool {
		return st.InBox != nil && st.InBox.Decision == string(rotation.UnknownDrive)
	})
	if err := r.a.Do(context.Background(), ActEnroll, "", "test"); err != nil {
		t.Fatal(err)
	}
	st := r.wait("enrolled and streaming", func(st status.Status) bool {
		return st.InBox != nil && st.InBox.Activity == "streaming" && verifiedBackups(st, "Son") == 1
	})
	enrolled := st.InBox.Drive
	eject := func(what string, l *usbtest.Loop) {
		t.Helper()
		if err := r.a.Do(context.Background(), ActEject, "", "test"); err != nil {
			t.Fatal(err)
		}
		r.wait(what+" safe to remove", func(st status.Status) bool { return st.InBox != nil && st.InBox.Activity == "safe to remove" })
		if err := l.Detach(); err != nil {
			t.Fatal(err)
		}
	}
	eject("the enrolled drive", l)
	b := usbtest.AttachLoopAt(t, other, l.Name) // at once: the box may see only changes of the device
	st = r.wait("a new, unknown drive at "+l.Name, func(st status.Status) bool {
		return st.InBox != nil && st.InBox.Decision == string(rotation.UnknownDrive) && st.InBox.Drive == ""
	})
	if st.InBox.Writable {
		t.Fatalf("the unknown drive at the enrolled drive's number is writable")
	}

	// The unknown drive leaves and a blank image takes its number, so the
	// enrolled drive comes back at another.
	eject("the unknown drive", b)
	r.wait("drive gone", func(st status.Status) bool { return st.InBox == nil })
	usbtest.AttachLoopAt(t, blank, l.Name)
	again := usbtest.AttachLoop(t, son)
	st = r.wait("the enrolled drive at "+again.Name, func(st status.Status) bool {
		return st.InBox != nil && st.InBox.Drive == enrolled
	})
	if st.InBox.Generation != "Son" || st.InBox.Decision == string(rotation.UnknownDrive) {
		t.Errorf("the drive back at %s is %q (%s); want Son", again.Name, st.InBox.Generation, st.InBox.Decision)
	}
}
