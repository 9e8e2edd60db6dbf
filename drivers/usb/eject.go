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

// Ejector makes drives safe to remove. Its zero value uses the real sysfs and
// /dev and retries a busy unmount for about five seconds.
type Ejector struct {
	Sysfs     string        // sysfs root; zero means "/sys"
	Dev       string        // directory of device nodes; zero means "/dev"
	MountInfo string        // mount table; zero means "/proc/self/mountinfo"
	Attempts  int           // unmount attempts while busy; zero means 20
	Wait      time.Duration // pause between attempts; zero means 250ms
}

// Ejected says how far an eject got.
type Ejected struct {
	Unmounted bool // every given mount is unmounted and nothing of the disk is mounted
	Flushed   bool // the disk's block device was fsynced and its buffers dropped
	// Deleted reports that the kernel deleted the disk's SCSI device and
	// let go of the drive.
	Deleted bool
	// NoDelete reports that the disk has no SCSI device to delete (a loop
	// device): once flushed, detaching it is the caller's job.
	NoDelete bool
}

// SafeToRemove reports whether the drive can be pulled now: every step done
// and the kernel has let go of it.
func (e Ejected) SafeToRemove() bool { return e.Unmounted && e.Flushed && e.Deleted }

// ErrStillMounted is returned when a disk to eject has mounts Eject was not
// given.
var ErrStillMounted = errors.New("still mounted")

// Eject unmounts mounts (after syncfs, retrying while busy, never lazily),
// checks that nothing else of disk (a whole disk's kernel name, "sdb") is
// mounted, fsyncs the disk's block device and drops its buffers (BLKFLSBUF),
// then deletes its SCSI device through /sys/block/disk/device/delete. It stops
// at the first step that fails; Ejected says which steps were done.
func (x Ejector) Eject(ctx context.Context, disk string, mounts ...*Mounted) (Ejected, error) {
	x.defaults()
	var done Ejected
	for _, m := range mounts {
		if err := m.unmount(ctx, x.Attempts, x.Wait); err != nil {
			return done, fmt.Errorf("usb: eject %s: %w", disk, err)
		}
	}
	d, err := readDevice(x.Sysfs, disk)
	if err != nil {
		return done, fmt.Errorf("usb: eject %s: %w", disk, err)
	}
	if err := x.checkUnmounted(d); err != nil {
		return done, fmt.Errorf("usb: eject %s: %w", disk, err)
	}
	done.Unmounted = true
	if err := flushBlock(filepath.Join(x.Dev, strings.TrimPrefix(d.devnode, "/dev/"))); err != nil {
		return done, fmt.Errorf("usb: eject %s: %w", disk, err)
	}
	done.Flushed = true
	del := filepath.Join(x.Sysfs, "block", disk, "device/delete")
	if _, err := os.Stat(del); errors.Is(err, os.ErrNotExist) {
		done.NoDelete = true
		return done, nil
	}
	if err := os.WriteFile(del, []byte("1"), 0o200); err != nil {
		return done, fmt.Errorf("usb: eject %s: delete device: %w", disk, err)
	}
	done.Deleted = true
	return done, nil
}

func (x *Ejector) defaults() {
	if x.Sysfs == "" {
		x.Sysfs = "/sys"
	}
	if x.Dev == "" {
		x.Dev = "/dev"
	}
	if x.MountInfo == "" {
		x.MountInfo = "/proc/self/mountinfo"
	}
	if x.Attempts <= 0 {
		x.Attempts = defaultAttempts
	}
	if x.Wait <= 0 {
		x.Wait = defaultWait
	}
}

// checkUnmounted fails if the disk or any of its partitions is mounted.
func (x Ejector) checkUnmounted(disk blockDev) error {
	t, err := readMountInfo(x.MountInfo)
	if err != nil {
		return err
	}
	devs := []blockDev{disk}
	if ents, err := os.ReadDir(filepath.Join(x.Sysfs, "class/block")); err == nil {
		for _, e := range ents {
			if p, err := readDevice(x.Sysfs, e.Name()); err == nil && !p.isDisk() && p.disk == disk.name {
				devs = append(devs, p)
			}
		}
	}
	for _, d := range devs {
		for _, m := range t {
			if m.major == d.major && m.minor == d.minor {
				return fmt.Errorf("%s on %s: %w", d.name, m.dir, ErrStillMounted)
			}
		}
	}
	return nil
}

// flushBlock writes the block device's dirty buffers to the drive and drops
// its buffer cache.
func flushBlock(node string) error {
	fd, err := unix.Open(node, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("flush %s: %w", node, err)
	}
	defer unix.Close(fd)
	if err := unix.Fsync(fd); err != nil {
		return fmt.Errorf("flush %s: fsync: %w", node, err)
	}
	if err := unix.IoctlSetInt(fd, unix.BLKFLSBUF, 0); err != nil {
		return fmt.Errorf("flush %s: BLKFLSBUF: %w", node, err)
	}
	return nil
}
