package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// errNoIOControl says the kernel offers no block I/O throttle this program
// can set: neither cgroup v1's blkio controller nor cgroup v2's io
// controller.
var errNoIOControl = errors.New("no cgroup block I/O throttle (blkio.throttle.write_bps_device or io.max)")

// cgroupRoot is where the cgroup file systems are mounted.
var cgroupRoot = "/sys/fs/cgroup"

// slowDrive is an ext4 file system on a loop device whose writes the kernel
// holds to a fixed rate, like the USB drive the box writes to: a USB-2
// stick writes about 30 MB/s.
type slowDrive struct {
	Dir     string // the mount point, writable by every user
	img     string
	dev     string // "/dev/loop3"
	majmin  string // "7:3"
	mounted bool
	release func() error
}

// openSlowDrive makes a sparse image of sizeMB under dir, attaches it to a
// free loop device, makes ext4 on it, mounts it and limits writes to the
// device to mbps MB/s. Close undoes all of it.
func openSlowDrive(ctx context.Context, dir string, sizeMB, mbps int) (*slowDrive, error) {
	d := &slowDrive{img: filepath.Join(dir, "drive.img"), Dir: filepath.Join(dir, "drive")}
	if err := runSteps(ctx, "slow drive", [][]string{{"truncate", "-s", fmt.Sprintf("%dM", sizeMB), d.img}, {"mkdir", "-p", d.Dir}}); err != nil {
		return nil, err
	}
	out, err := exec.CommandContext(ctx, "losetup", "--find", "--show", d.img).Output()
	if err != nil {
		os.Remove(d.img)
		return nil, fmt.Errorf("slow drive: losetup %s: %w", d.img, err)
	}
	d.dev = strings.TrimSpace(string(out))
	if err := d.setUp(ctx, mbps); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func (d *slowDrive) setUp(ctx context.Context, mbps int) error {
	if err := runSteps(ctx, "slow drive", [][]string{{"mkfs.ext4", "-q", "-F", d.dev}, {"mount", d.dev, d.Dir}}); err != nil {
		return err
	}
	d.mounted = true
	if err := os.Chmod(d.Dir, 0o777|os.ModeSticky); err != nil {
		return err
	}
	raw, err := os.ReadFile(filepath.Join("/sys/class/block", filepath.Base(d.dev), "dev"))
	if err != nil {
		return fmt.Errorf("slow drive: %w", err)
	}
	d.majmin = strings.TrimSpace(string(raw))
	d.release, err = throttleWrites(d.majmin, int64(mbps)*1e6)
	return err
}

// throttleWrites limits writes to the device majmin to bps bytes a second
// for every process, and returns what lifts the limit. On cgroup v1 the
// root blkio cgroup's limit holds for the kernel's own writeback too. On
// cgroup v2 the root takes no limit, so this process moves into a new
// child cgroup with the limit (with the memory controller beside io, so
// that writeback is charged to it) and the programs it starts afterwards
// inherit it.
func throttleWrites(majmin string, bps int64) (func() error, error) {
	v1 := filepath.Join(cgroupRoot, "blkio", "blkio.throttle.write_bps_device")
	if _, err := os.Stat(v1); err == nil {
		if err := writeControl(v1, fmt.Sprintf("%s %d", majmin, bps)); err != nil {
			return nil, err
		}
		return func() error { return writeControl(v1, majmin+" 0") }, nil
	}
	return throttleV2(majmin, bps)
}

func throttleV2(majmin string, bps int64) (func() error, error) {
	self, err := ownCgroupV2()
	if err != nil {
		return nil, err
	}
	ctrl, err := os.ReadFile(filepath.Join(self, "cgroup.controllers"))
	if err != nil || !strings.Contains(" "+string(ctrl)+" ", " io ") {
		return nil, errNoIOControl
	}
	child := filepath.Join(self, fmt.Sprintf("clinicbench-drive-%d", os.Getpid()))
	if err := os.Mkdir(child, 0o755); err != nil {
		return nil, fmt.Errorf("slow drive: %w", err)
	}
	steps := [][2]string{{"cgroup.subtree_control", "+io +memory"}, {child + "/io.max", fmt.Sprintf("%s wbps=%d", majmin, bps)}, {child + "/cgroup.procs", strconv.Itoa(os.Getpid())}}
	steps[0][0] = filepath.Join(self, steps[0][0])
	for _, s := range steps {
		if err := writeControl(s[0], s[1]); err != nil {
			os.Remove(child)
			return nil, err
		}
	}
	return func() error {
		if err := writeControl(filepath.Join(self, "cgroup.procs"), strconv.Itoa(os.Getpid())); err != nil {
			return err
		}
		return os.Remove(child)
	}, nil
}

// ownCgroupV2 is the directory of this process's cgroup v2, when the
// unified hierarchy is mounted at the cgroup root.
func ownCgroupV2() (string, error) {
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err != nil {
		return "", errNoIOControl
	}
	raw, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			return filepath.Join(cgroupRoot, filepath.Clean("/"+rest)), nil
		}
	}
	return "", errNoIOControl
}

func writeControl(path, value string) error {
	if err := os.WriteFile(path, []byte(value), 0); err != nil {
		return fmt.Errorf("slow drive: write %q to %s: %w", value, path, err)
	}
	return nil
}

// Written is how many bytes the kernel has written to the device since it
// was attached, from its statistics (sectors of 512 bytes): what reached
// the drive, including file system metadata and zero-filled space.
func (d *slowDrive) Written() (int64, error) {
	raw, err := os.ReadFile(filepath.Join("/sys/class/block", filepath.Base(d.dev), "stat"))
	if err != nil {
		return 0, fmt.Errorf("slow drive: %w", err)
	}
	f := strings.Fields(string(raw))
	if len(f) < 7 {
		return 0, fmt.Errorf("slow drive: short statistics %q", raw)
	}
	sectors, err := strconv.ParseInt(f[6], 10, 64)
	return sectors * 512, err
}

// Close lifts the limit, unmounts, detaches and removes the image.
func (d *slowDrive) Close() error {
	var errs []error
	if d.release != nil {
		errs = append(errs, d.release())
	}
	if d.mounted {
		errs = append(errs, exec.Command("umount", d.Dir).Run())
	}
	errs = append(errs, exec.Command("losetup", "-d", d.dev).Run(), os.Remove(d.img), os.Remove(d.Dir))
	return errors.Join(errs...)
}

// runSteps runs each command in turn, stopping at the first that fails.
func runSteps(ctx context.Context, what string, steps [][]string) error {
	for _, c := range steps {
		if out, err := exec.CommandContext(ctx, c[0], c[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %s: %w\n%s", what, c[0], err, out)
		}
	}
	return nil
}
