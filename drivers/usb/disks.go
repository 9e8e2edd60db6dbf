package usb

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Disks lists the whole disks with media in sysfs, in name order, each with
// what sysfs tells about it (USB is nil for a disk not on USB: an NVMe or
// SATA disk, an SD card, a virtual disk). It reads no device node, so it
// never touches a disk's contents; FS is left empty.
func (x Identifier) Disks() ([]Identity, error) {
	sysfs, dev := x.Sysfs, x.Dev
	if sysfs == "" {
		sysfs = "/sys"
	}
	if dev == "" {
		dev = "/dev"
	}
	devs, err := scanBlock(sysfs)
	if err != nil {
		return nil, err
	}
	var out []Identity
	for _, d := range devs {
		if !d.isDisk() {
			continue
		}
		id := Identity{Name: d.name, Disk: d.disk, Size: d.size,
			DevNode: filepath.Join(dev, strings.TrimPrefix(d.devnode, "/dev/"))}
		id.Removable = readAttr(filepath.Join(sysfs, "class/block", d.disk, "removable")) == "1"
		if id.USB, err = findUSB(sysfs, d.name); err != nil {
			return nil, fmt.Errorf("usb: list disks: %s: %w", d.name, err)
		}
		out = append(out, id)
	}
	return out, nil
}
