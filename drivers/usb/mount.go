package usb

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// MountFlags are the flags every drive is mounted with: nothing on a drive
// that someone carried home can run, act as a device, or gain privileges.
const MountFlags = unix.MS_NOATIME | unix.MS_NODEV | unix.MS_NOSUID | unix.MS_NOEXEC

// ErrNoFilesystem is returned when a device holds no filesystem this package
// can read or mount.
var ErrNoFilesystem = errors.New("no known filesystem")

// Mounted is a filesystem mounted by Mount.
type Mounted struct {
	Dir    string // mount point
	Device string // block device node
	FSType string // filesystem type passed to mount(2)
}

// Mount mounts the filesystem id describes at runDir/id.Name with MountFlags.
// runDir is created if missing; it should be on tmpfs or /perm, since the
// gokrazy root is read-only.
func Mount(runDir string, id Identity) (*Mounted, error) { return mount(runDir, id, 0) }

// MountReadOnly is Mount with the filesystem read-only: for reading a
// drive's identity before anything decides it may be written.
func MountReadOnly(runDir string, id Identity) (*Mounted, error) {
	return mount(runDir, id, unix.MS_RDONLY)
}

// Remount switches a mounted filesystem between read-only and writable.
func (m *Mounted) Remount(writable bool) error {
	flags := uintptr(MountFlags | unix.MS_REMOUNT)
	if !writable {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount(m.Device, m.Dir, m.FSType, flags, ""); err != nil {
		return fmt.Errorf("usb: remount %s: %w", m.Dir, err)
	}
	return nil
}

func mount(runDir string, id Identity, extra uintptr) (*Mounted, error) {
	fstype := mountType(id.FS.Type)
	if fstype == "" {
		return nil, fmt.Errorf("usb: mount %s: %w", id.DevNode, ErrNoFilesystem)
	}
	if id.Name == "" || strings.ContainsAny(id.Name, "/") || id.Name == "." || id.Name == ".." {
		return nil, fmt.Errorf("usb: mount %s: bad device name %q", id.DevNode, id.Name)
	}
	dir := filepath.Join(runDir, id.Name)
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		return nil, fmt.Errorf("usb: mount %s: %w", id.DevNode, err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("usb: mount %s: %w", id.DevNode, err)
	}
	if err := dropStaleMounts(dir); err != nil {
		return nil, fmt.Errorf("usb: mount %s: %w", id.DevNode, err)
	}
	if err := unix.Mount(id.DevNode, dir, fstype, MountFlags|extra, ""); err != nil {
		return nil, fmt.Errorf("usb: mount %s on %s: %w", id.DevNode, dir, err)
	}
	return &Mounted{Dir: dir, Device: id.DevNode, FSType: fstype}, nil
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
	return unmount(ctx, m.Dir, defaultAttempts, defaultWait)
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

// mountEntry is one line of /proc/self/mountinfo: a device and where it is mounted.
type mountEntry struct {
	major, minor uint32
	dir          string
}

// mountTable is the whole of /proc/self/mountinfo.
type mountTable []mountEntry

// has reports whether the device major:minor is mounted anywhere.
func (t mountTable) has(major, minor uint32) bool {
	for _, m := range t {
		if m.major == major && m.minor == minor {
			return true
		}
	}
	return false
}

// at reports whether anything is mounted at dir.
func (t mountTable) at(dir string) bool {
	for _, m := range t {
		if m.dir == dir {
			return true
		}
	}
	return false
}

// readMountInfo reads a mountinfo file ("36 35 98:0 / /mnt rw ... - ext4 ...").
func readMountInfo(p string) (mountTable, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("usb: read mounts: %w", err)
	}
	defer f.Close()
	var t mountTable
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 5 {
			continue
		}
		maj, mnr, ok := strings.Cut(fs[2], ":")
		a, err1 := strconv.ParseUint(maj, 10, 32)
		b, err2 := strconv.ParseUint(mnr, 10, 32)
		if !ok || err1 != nil || err2 != nil {
			continue
		}
		t = append(t, mountEntry{uint32(a), uint32(b), unescapeMount(fs[4])})
	}
	return t, sc.Err()
}

// unescapeMount undoes mountinfo's octal escapes ("\040" for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
