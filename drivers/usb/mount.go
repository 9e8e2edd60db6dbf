package usb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// MountFlags are the flags every drive is mounted with: nothing on a drive
// that someone carried home can run, act as a device, gain privileges, or
// lead the box elsewhere through a symbolic link.
const MountFlags = unix.MS_NOATIME | unix.MS_NODEV | unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NOSYMFOLLOW

// ErrNoFilesystem is returned when a device holds no filesystem this package
// can read or mount.
var ErrNoFilesystem = errors.New("no known filesystem")

// Mounted is a filesystem mounted by Mount.
type Mounted struct {
	Dir    string // mount point
	Device string // block device node
	FSType string // filesystem type passed to mount(2)
	// locked reports that the block device itself is read-only (BLKROSET)
	// and the filesystem mounted without its journal: nothing can change
	// the drive until Remount(true) or Unmount undoes it.
	locked bool
}

// Mount mounts the filesystem id describes at runDir/id.Name with MountFlags.
// runDir is created if missing; it should be on tmpfs or /perm, since the
// gokrazy root is read-only.
func Mount(runDir string, id Identity) (*Mounted, error) { return mount(runDir, id, false) }

// MountReadOnly is Mount for reading a drive before anything decides it
// may be written: the block device is set read-only first, and ext4 is
// mounted with noload, since even a read-only mount replays a journal that
// needs recovery. The drive does not change by a byte. What a journal not
// replayed held is not seen until Remount(true).
func MountReadOnly(runDir string, id Identity) (*Mounted, error) { return mount(runDir, id, true) }

// Remount switches a mounted filesystem between read-only and writable. A
// drive mounted by MountReadOnly is unmounted, its block device made
// writable and mounted again, which replays its journal.
func (m *Mounted) Remount(writable bool) error {
	if writable && m.locked {
		return m.unlock()
	}
	flags := uintptr(MountFlags | unix.MS_REMOUNT)
	if !writable {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount(m.Device, m.Dir, m.FSType, flags, ""); err != nil {
		return fmt.Errorf("usb: remount %s: %w", m.Dir, err)
	}
	return nil
}

// unlock turns a MountReadOnly mount into a writable one; on failure the
// drive is left as it was, mounted read-only.
func (m *Mounted) unlock() error {
	if err := unmountOnly(context.Background(), m.Dir, defaultAttempts, defaultWait); err != nil {
		return fmt.Errorf("usb: remount %s: %w", m.Dir, err)
	}
	err := setReadOnly(m.Device, false)
	if err == nil {
		err = unix.Mount(m.Device, m.Dir, m.FSType, MountFlags, "")
	}
	if err == nil {
		m.locked = false
		return nil
	}
	if err2 := setReadOnly(m.Device, true); err2 == nil {
		err2 = unix.Mount(m.Device, m.Dir, m.FSType, MountFlags|unix.MS_RDONLY, noLoad(m.FSType))
		if err2 != nil {
			return fmt.Errorf("usb: remount %s writable: %w (and mounting it read-only again: %v)", m.Dir, err, err2)
		}
	}
	return fmt.Errorf("usb: remount %s writable: %w", m.Dir, err)
}

// mountDirPerm is the mode of the directory of mount points and of each.
const mountDirPerm = 0o711

func mount(runDir string, id Identity, readOnly bool) (*Mounted, error) {
	fstype := mountType(id.FS.Type)
	if fstype == "" {
		return nil, fmt.Errorf("usb: mount %s: %w", id.DevNode, ErrNoFilesystem)
	}
	if id.Name == "" || strings.ContainsAny(id.Name, "/") || id.Name == "." || id.Name == ".." {
		return nil, fmt.Errorf("usb: mount %s: bad device name %q", id.DevNode, id.Name)
	}
	dir := filepath.Join(runDir, id.Name)
	// Others may pass through to a path they know, not list: a restore
	// drill's PostgreSQL, as its own user, runs wal-fetch on the
	// repository of the drive (ciphertext, readable as mkfs made the
	// drive's root).
	if err := os.MkdirAll(runDir, mountDirPerm); err != nil {
		return nil, fmt.Errorf("usb: mount %s: %w", id.DevNode, err)
	}
	if err := os.Chmod(runDir, mountDirPerm); err != nil { // made 0700 by an older version
		return nil, fmt.Errorf("usb: mount %s: %w", id.DevNode, err)
	}
	if err := os.Mkdir(dir, mountDirPerm); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("usb: mount %s: %w", id.DevNode, err)
	}
	if err := dropStaleMounts(dir); err != nil {
		return nil, fmt.Errorf("usb: mount %s: %w", id.DevNode, err)
	}
	flags, data := uintptr(MountFlags), ""
	if readOnly {
		if err := setReadOnly(id.DevNode, true); err != nil {
			return nil, fmt.Errorf("usb: mount %s: %w", id.DevNode, err)
		}
		flags, data = flags|unix.MS_RDONLY, noLoad(fstype)
	}
	if err := unix.Mount(id.DevNode, dir, fstype, flags, data); err != nil {
		if readOnly {
			setReadOnly(id.DevNode, false)
		}
		return nil, fmt.Errorf("usb: mount %s on %s: %w", id.DevNode, dir, err)
	}
	return &Mounted{Dir: dir, Device: id.DevNode, FSType: fstype, locked: readOnly}, nil
}

// noLoad is the mount option that keeps a read-only mount from replaying
// the journal: ext4's noload. FAT and exFAT have no journal and write
// nothing when mounted read-only.
func noLoad(fstype string) string {
	if fstype == "ext4" {
		return "noload"
	}
	return ""
}

// setReadOnly sets or clears the block device's read-only flag (BLKROSET):
// while set, the kernel refuses every write to the device, whatever
// mounts it.
func setReadOnly(dev string, ro bool) error {
	fd, err := unix.Open(dev, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("set %s read-only=%v: %w", dev, ro, err)
	}
	defer unix.Close(fd)
	v := 0
	if ro {
		v = 1
	}
	if err := unix.IoctlSetPointerInt(fd, unix.BLKROSET, v); err != nil {
		return fmt.Errorf("set %s read-only=%v: %w", dev, ro, err)
	}
	return nil
}

// dropStaleMounts unmounts whatever is still mounted at dir, a mount point
// under the run directory: a service that was killed (SIGKILL, a crash)
// leaves its drive mounted, and the kernel refuses to mount the same
// device again read-only while it is mounted writable (EBUSY), so without
// this the restarted service could not use the drive until a reboot. The
// unmount is the careful one (syncfs, retry while busy, never lazy).
func dropStaleMounts(dir string) error {
	for range 8 { // mounts can be stacked; a few is plenty
		t, err := readMountInfo("/proc/self/mountinfo")
		if err != nil {
			return err
		}
		if !t.at(dir) {
			return nil
		}
		if err := unmountOnly(context.Background(), dir, defaultAttempts, defaultWait); err != nil {
			return fmt.Errorf("left mounted by an earlier run: %w", err)
		}
	}
	return fmt.Errorf("%s still mounted after unmounting it 8 times", dir)
}

// mountType maps a filesystem type found on a device to the one to mount:
// the ext4 driver mounts ext2 and ext3 too.
func mountType(t string) string {
	switch t {
	case "ext2", "ext3", "ext4":
		return "ext4"
	case "vfat", "exfat":
		return t
	}
	return ""
}

// Unmount flushes the filesystem to the drive (syncfs) and unmounts it,
// retrying while it is busy, then removes the mount point. It never detaches
// lazily: a lazy unmount returns before the data is on the drive.
func (m *Mounted) Unmount(ctx context.Context) error {
	return m.unmount(ctx, defaultAttempts, defaultWait)
}

// unmount unmounts and removes the mount point, then makes a device that
// MountReadOnly set read-only writable again: with nothing mounted,
// nothing can write to it, and a device used again later (a loop device,
// the same stick put back) starts as the kernel made it.
func (m *Mounted) unmount(ctx context.Context, attempts int, wait time.Duration) error {
	if err := unmount(ctx, m.Dir, attempts, wait); err != nil {
		return err
	}
	if m.locked {
		if err := setReadOnly(m.Device, false); err != nil {
			return fmt.Errorf("usb: unmount %s: %w", m.Dir, err)
		}
		m.locked = false
	}
	return nil
}

const (
	defaultAttempts = 20
	defaultWait     = 250 * time.Millisecond
)

func unmount(ctx context.Context, dir string, attempts int, wait time.Duration) error {
	if err := unmountOnly(ctx, dir, attempts, wait); err != nil {
		return err
	}
	if err := os.Remove(dir); err != nil {
		return fmt.Errorf("usb: unmount %s: remove mount point: %w", dir, err)
	}
	return nil
}

// unmountOnly flushes and unmounts dir, retrying while it is busy, and
// leaves the mount point.
func unmountOnly(ctx context.Context, dir string, attempts int, wait time.Duration) error {
	if err := syncDir(dir); err != nil {
		return err
	}
	for i := 1; ; i++ {
		err := unix.Unmount(dir, 0)
		if err == nil {
			break
		}
		if err != unix.EBUSY || i >= attempts {
			return fmt.Errorf("usb: unmount %s: %w", dir, err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("usb: unmount %s: still busy: %w", dir, ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// syncDir writes out everything cached for the filesystem holding dir.
func syncDir(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("usb: sync %s: %w", dir, err)
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("usb: sync %s: %w", dir, err)
	}
	return nil
}
