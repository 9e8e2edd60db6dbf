package fault

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/drivers/postgres"
	"github.com/clinicbox/clinicbox/drivers/usb/usbtest"
	"golang.org/x/sys/unix"
)

// drive is an ext4 image on a loop device, mounted: the nearest thing to a
// USB drive this machine has.
type drive struct {
	t     *testing.T
	image string
	loop  *usbtest.Loop
	dir   string // mount point
	opts  string
}

// newDrive formats, attaches and mounts an image of size bytes. The mount
// asks ext4 to turn read-only on an error, as a failing drive does.
func newDrive(t *testing.T, size int64) *drive {
	t.Helper()
	img := usbtest.MakeImage(t, usbtest.Image{Type: "ext4", Label: "CLINICBOX", Size: size})
	d := &drive{t: t, image: img, dir: t.TempDir(), opts: "errors=remount-ro"}
	d.attach()
	return d
}

// attach attaches the image to a fresh loop device and mounts it: the
// drive plugged in (again).
func (d *drive) attach() {
	d.t.Helper()
	d.loop = usbtest.AttachLoop(d.t, d.image)
	if err := unix.Mount(d.loop.Dev, d.dir, "ext4", unix.MS_NOATIME, d.opts); err != nil {
		d.t.Fatalf("mount %s: %v", d.loop.Dev, err)
	}
	d.t.Cleanup(d.unmount)
}

// unmount unmounts if mounted; detaching is left to the loop's cleanup.
func (d *drive) unmount() {
	if err := unix.Unmount(d.dir, 0); err != nil && err != unix.EINVAL {
		unix.Unmount(d.dir, unix.MNT_DETACH)
	}
}

// pull unmounts and detaches the drive, as if it were pulled out.
func (d *drive) pull() {
	d.t.Helper()
	d.unmount()
	if err := d.loop.Detach(); err != nil {
		d.t.Fatal(err)
	}
}

// fsShutdown is FS_IOC_SHUTDOWN (linux/fs.h, _IOR('X', 125, __u32)) and
// its NOLOGFLUSH flag; golang.org/x/sys does not define them. After it,
// every read and write on the filesystem fails with EIO, and what the
// filesystem had not yet written to the device (no fsync, no writeback) is
// never written: xfstests simulates power failure the same way ("godown").
const (
	fsShutdown           = 0x8004587D
	fsShutdownNoLogFlush = 0x2
)

// cutPower shuts the filesystem down without writing anything more.
func (d *drive) cutPower() {
	d.t.Helper()
	d.onFS("shutdown", func(fd int) error { return unix.IoctlSetPointerInt(fd, fsShutdown, fsShutdownNoLogFlush) })
}

// turnReadOnly makes ext4 record an error, which with errors=remount-ro
// turns the filesystem read-only, as a failing drive does.
func (d *drive) turnReadOnly() {
	d.t.Helper()
	p := filepath.Join("/sys/fs/ext4", d.loop.Name, "trigger_fs_error")
	if err := os.WriteFile(p, []byte("clinicbox fault suite\n"), 0); err != nil {
		d.t.Fatalf("trigger ext4 error: %v", err)
	}
}

// fill leaves about free bytes free on the drive: it allocates 1 MB at a
// time until the drive is full (root may use the reserved blocks too),
// then gives back free bytes.
func (d *drive) fill(free int64) string {
	d.t.Helper()
	p := filepath.Join(d.dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		d.t.Fatal(err)
	}
	defer f.Close()
	// Whole MBs first, then ever smaller pieces down to a block, so that
	// what is left is free's size and not free plus up to a MB.
	var size int64
	for step := int64(1 << 20); step >= 4096; {
		err := unix.Fallocate(int(f.Fd()), 0, size, step)
		if err == unix.ENOSPC {
			step /= 2
			continue
		}
		if err != nil {
			d.t.Fatalf("fallocate: %v", err)
		}
		size += step
	}
	if err := f.Truncate(max(0, size-free)); err != nil {
		d.t.Fatal(err)
	}
	return p
}

// sync writes everything the drive's filesystem holds in memory to it.
func (d *drive) sync() {
	d.t.Helper()
	d.onFS("syncfs", unix.Syncfs)
}

// onFS runs call on a descriptor of the drive's mounted filesystem.
func (d *drive) onFS(what string, call func(fd int) error) {
	d.t.Helper()
	f, err := os.Open(d.dir)
	if err != nil {
		d.t.Fatal(err)
	}
	defer f.Close()
	if err := call(int(f.Fd())); err != nil {
		d.t.Fatalf("%s %s: %v", what, d.dir, err)
	}
}

// storedEnd is where the WAL stored in a repository ends, read from the
// segments themselves (not the advisory state file).
func storedEnd(t *testing.T, dir string, k key) postgres.LSN {
	t.Helper()
	repo, err := archive.OpenFirstUse(dir)
	if err != nil {
		t.Fatal(err)
	}
	tls, err := repo.Timelines()
	if err != nil || len(tls) == 0 {
		t.Fatalf("timelines: %v (%d)", err, len(tls))
	}
	tl := tls[len(tls)-1]
	if len(tl.Segments) == 0 {
		return 0
	}
	s := tl.Segments[len(tl.Segments)-1]
	seg := repo.Info.SegmentSize
	if !s.Partial {
		return postgres.LSN((s.SegNo + 1) * seg)
	}
	sd, err := repo.ReadSegment(s.TLI, s.SegNo, k.ids)
	if err != nil {
		t.Fatalf("read %s: %v", s.Name, err)
	}
	return postgres.LSN(s.SegNo*seg + uint64(sd.Valid))
}

// lostWAL says how much WAL reported flushed to the server is not on the
// drive: "" when none.
func lostWAL(claimed, stored postgres.LSN) string {
	if stored >= claimed {
		return ""
	}
	return fmt.Sprintf("%d bytes of WAL reported flushed (%s) but not stored (ends %s)", uint64(claimed-stored), claimed, stored)
}
