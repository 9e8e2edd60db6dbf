package usb

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// blockDev is what is known about one block device from a uevent or sysfs.
type blockDev struct {
	name, disk, devnode, devpath string
	partn                        int
	major, minor                 uint32
	size                         int64
	// pulled records, on a disk, that one of its partitions was removed
	// while mounted.
	pulled bool
}

func (d blockDev) isDisk() bool { return d.name == d.disk }

func (d blockDev) event(k Kind, action string) Event {
	return Event{Kind: k, Action: action, Name: d.name, Disk: d.disk, Partition: d.partn,
		DevNode: d.devnode, DevPath: d.devpath, Major: d.major, Minor: d.minor, Size: d.size}
}

// devFromEnv reads a block device's variables (from a uevent, or from the
// uevent file in its sysfs directory). ok is false unless it is a disk or a
// partition with a name.
func devFromEnv(env map[string]string, devpath string) (blockDev, bool) {
	name := path.Base(devpath)
	node := env["DEVNAME"]
	if node == "" {
		node = name
	}
	if name == "." || name == ".." || name == "/" || strings.Contains(node, "..") {
		return blockDev{}, false
	}
	d := blockDev{name: name, devnode: "/dev/" + node, devpath: devpath, disk: name}
	switch env["DEVTYPE"] {
	case "disk":
	case "partition":
		d.disk = path.Base(path.Dir(devpath))
		d.partn, _ = strconv.Atoi(env["PARTN"])
		if d.disk == "/" || d.disk == "." || d.disk == ".." {
			return blockDev{}, false
		}
	default:
		return blockDev{}, false
	}
	maj, _ := strconv.ParseUint(env["MAJOR"], 10, 32)
	mnr, _ := strconv.ParseUint(env["MINOR"], 10, 32)
	d.major, d.minor = uint32(maj), uint32(mnr)
	return d, true
}

// readEnvFile reads KEY=VAL lines, as in a sysfs uevent file.
func readEnvFile(p string) (map[string]string, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = v
		}
	}
	return env, sc.Err()
}

// readSize returns the size in bytes of /sys/class/block/name (sysfs counts
// 512-byte sectors whatever the logical block size).
func readSize(sysfs, name string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(sysfs, "class/block", name, "size"))
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("usb: size of %s: %w", name, err)
	}
	return n * 512, nil
}

// readDevice describes /sys/class/block/name.
func readDevice(sysfs, name string) (blockDev, error) {
	link := filepath.Join(sysfs, "class/block", name)
	real, err := filepath.EvalSymlinks(link)
	if err != nil {
		return blockDev{}, fmt.Errorf("usb: read device %s: %w", name, err)
	}
	root, err := filepath.EvalSymlinks(sysfs)
	if err != nil {
		return blockDev{}, fmt.Errorf("usb: read device %s: %w", name, err)
	}
	rel, err := filepath.Rel(root, real)
	if err != nil {
		return blockDev{}, fmt.Errorf("usb: read device %s: %w", name, err)
	}
	env, err := readEnvFile(filepath.Join(real, "uevent"))
	if err != nil {
		return blockDev{}, fmt.Errorf("usb: read device %s: %w", name, err)
	}
	d, ok := devFromEnv(env, "/"+filepath.ToSlash(rel))
	if !ok {
		return blockDev{}, fmt.Errorf("usb: read device %s: not a disk or partition", name)
	}
	if d.size, err = readSize(sysfs, name); err != nil {
		return blockDev{}, fmt.Errorf("usb: read device %s: %w", name, err)
	}
	return d, nil
}

// scanBlock lists the block devices in sysfs that have media (size above
// zero): disks first, then partitions, each in name order. Devices that vanish
// while being read are left out.
func scanBlock(sysfs string) ([]blockDev, error) {
	ents, err := os.ReadDir(filepath.Join(sysfs, "class/block"))
	if err != nil {
		return nil, fmt.Errorf("usb: scan block devices: %w", err)
	}
	var devs []blockDev
	for _, e := range ents {
		d, err := readDevice(sysfs, e.Name())
		if err != nil || d.size == 0 {
			continue
		}
		devs = append(devs, d)
	}
	sort.Slice(devs, func(i, j int) bool {
		a, b := devs[i], devs[j]
		if a.isDisk() != b.isDisk() {
			return a.isDisk()
		}
		if a.disk != b.disk {
			return a.disk < b.disk
		}
		return a.partn < b.partn
	})
	return devs, nil
}
