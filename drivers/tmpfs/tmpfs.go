// Package tmpfs makes memory-only scratch directories for restore drills
// (restore step of the data path) on kernels without file-system
// encryption: a tmpfs of a fixed size, whose contents never reach a disk
// and are gone at a power cut, an unmount or a reboot.
package tmpfs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// prefix names the mount points Mount makes, so Sweep finds them.
const prefix = "clinicbox-ram-"

// Dir is a mounted tmpfs.
type Dir struct {
	Path string
	// Size is the most it holds, in bytes.
	Size int64
}

// Mount mounts a tmpfs of size bytes on a new directory under parent.
// Others may pass through it (a drill's PostgreSQL runs as its own user).
// The kernel refuses writes beyond size, so a drill cannot eat the
// memory the box's backups need.
func Mount(parent string, size int64) (*Dir, error) {
	if size <= 0 {
		return nil, fmt.Errorf("tmpfs: size %d; want a positive number of bytes", size)
	}
	if err := os.MkdirAll(parent, 0o711); err != nil {
		return nil, fmt.Errorf("tmpfs: %w", err)
	}
	path, err := os.MkdirTemp(parent, prefix)
	if err != nil {
		return nil, fmt.Errorf("tmpfs: %w", err)
	}
	opts := fmt.Sprintf("size=%d,mode=0711", size)
	if err := unix.Mount("tmpfs", path, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("tmpfs: mount on %s: %w", path, err)
	}
	return &Dir{Path: path, Size: size}, nil
}

// Remove unmounts the tmpfs, which frees its memory, and deletes the
// mount point. A tmpfs still busy (a process of the drill not yet gone)
// is detached: the kernel frees it when the last user closes it.
func (d *Dir) Remove() error {
	return unmount(d.Path)
}

func unmount(path string) error {
	if err := unix.Unmount(path, 0); err != nil {
		if !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("tmpfs: unmount %s: %w", path, err)
		}
		if err := unix.Unmount(path, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("tmpfs: detach %s: %w", path, err)
		}
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("tmpfs: %w", err)
	}
	return nil
}

// Sweep unmounts and deletes what Mount left under parent when the
// service stopped mid-drill without a reboot: a tmpfs outlives its
// process, and with it the restored database. Call it at start-up.
func Sweep(parent string) error {
	entries, err := os.ReadDir(parent)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("tmpfs: sweep %s: %w", parent, err)
	}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		p := filepath.Join(parent, e.Name())
		err := unmount(p)
		if errors.Is(err, unix.EINVAL) {
			err = os.RemoveAll(p) // not a mount point (Mount failed half-way)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Memory is the kernel's view of memory, from /proc/meminfo.
type Memory struct {
	// Total is the RAM the kernel manages; Available is what it estimates
	// can be given to new work without swapping (MemAvailable).
	Total, Available int64
}

// ReadMemory reads /proc/meminfo.
func ReadMemory() (Memory, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return Memory{}, fmt.Errorf("tmpfs: %w", err)
	}
	defer f.Close()
	return ParseMemory(f)
}

// ParseMemory reads MemTotal and MemAvailable from meminfo's text.
func ParseMemory(r io.Reader) (Memory, error) {
	var m Memory
	sc := bufio.NewScanner(io.LimitReader(r, 64<<10)) // meminfo is about 1.5 KB
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[2] != "kB" {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "MemTotal:":
			m.Total = n << 10
		case "MemAvailable:":
			m.Available = n << 10
		}
	}
	if err := sc.Err(); err != nil {
		return m, fmt.Errorf("tmpfs: meminfo: %w", err)
	}
	if m.Total == 0 || m.Available == 0 {
		return m, errors.New("tmpfs: meminfo has no MemTotal or MemAvailable")
	}
	return m, nil
}
