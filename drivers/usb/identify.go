package usb

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Identity is what sysfs and the superblock tell about a block device.
type Identity struct {
	Name      string // kernel name: "sdb1"
	Disk      string // the whole disk: "sdb"; Name for a disk
	Partition int    // partition number; 0 for a whole disk
	DevNode   string // device node: "/dev/sdb1"
	Size      int64  // bytes
	Removable bool   // the disk reports removable media
	// USB is the USB device the disk hangs off; nil when it is not on USB
	// (a loop device, an SD card slot, a virtual disk).
	USB *USBDevice
	// FS is the filesystem found on the device; its Type is empty when
	// there is none this package knows.
	FS Filesystem
}

// USBDevice is a USB device from its sysfs attributes. For a drive in an
// enclosure these name the enclosure's USB-SATA bridge, not the drive inside.
type USBDevice struct {
	Vendor       string // idVendor, four hex digits: "0781"
	Product      string // idProduct: "5581"
	Bridge       string // "vendor:product", as bridge allowlists are written
	Serial       string // the serial number string; empty when the device has none
	Manufacturer string // the manufacturer string; may be empty
	ProductName  string // the product string; may be empty
	SysPath      string // sysfs path below the root: "/devices/.../usb2/2-1"
}

// Identifier reads identities from a sysfs tree and device nodes. Its zero
// value reads the real ones.
type Identifier struct {
	Sysfs string // sysfs root; zero means "/sys"
	Dev   string // directory of device nodes; zero means "/dev"
}

// Identify describes the block device /sys/class/block/name from the real
// sysfs and /dev.
func Identify(name string) (Identity, error) { return Identifier{}.Identify(name) }

// Identify describes the block device /sys/class/block/name. When the device
// node cannot be read, the sysfs part is returned with the error.
func (x Identifier) Identify(name string) (Identity, error) {
	sysfs, dev := x.Sysfs, x.Dev
	if sysfs == "" {
		sysfs = "/sys"
	}
	if dev == "" {
		dev = "/dev"
	}
	d, err := readDevice(sysfs, name)
	if err != nil {
		return Identity{}, fmt.Errorf("usb: identify %s: %w", name, err)
	}
	id := Identity{Name: d.name, Disk: d.disk, Partition: d.partn, Size: d.size,
		DevNode: filepath.Join(dev, strings.TrimPrefix(d.devnode, "/dev/"))}
	id.Removable = readAttr(filepath.Join(sysfs, "class/block", d.disk, "removable")) == "1"
	if id.USB, err = findUSB(sysfs, name); err != nil {
		return id, fmt.Errorf("usb: identify %s: %w", name, err)
	}
	f, err := os.Open(id.DevNode)
	if err != nil {
		return id, fmt.Errorf("usb: identify %s: %w", name, err)
	}
	defer f.Close()
	id.FS, err = ReadFilesystem(f)
	if err != nil && !errors.Is(err, ErrNoFilesystem) {
		return id, fmt.Errorf("usb: identify %s: %w", name, err)
	}
	return id, nil
}

// findUSB walks up from the device's sysfs directory to the first directory
// holding idVendor: the USB device. It returns nil when there is none.
func findUSB(sysfs, name string) (*USBDevice, error) {
	root, err := filepath.EvalSymlinks(sysfs)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.EvalSymlinks(filepath.Join(sysfs, "class/block", name))
	if err != nil {
		return nil, err
	}
	for ; strings.HasPrefix(dir, root+string(filepath.Separator)); dir = filepath.Dir(dir) {
		vendor := readAttr(filepath.Join(dir, "idVendor"))
		if vendor == "" {
			continue
		}
		u := &USBDevice{
			Vendor:       vendor,
			Product:      readAttr(filepath.Join(dir, "idProduct")),
			Serial:       readAttr(filepath.Join(dir, "serial")),
			Manufacturer: readAttr(filepath.Join(dir, "manufacturer")),
			ProductName:  readAttr(filepath.Join(dir, "product")),
			SysPath:      strings.TrimPrefix(dir, root),
		}
		u.Bridge = u.Vendor + ":" + u.Product
		return u, nil
	}
	return nil, nil
}

// readAttr returns a sysfs attribute without surrounding space, with control
// and invalid bytes (a device chooses its own strings) replaced; "" if absent.
func readAttr(p string) string {
	b, err := os.ReadFile(p)
	if err != nil || len(b) > 4096 {
		return ""
	}
	return clean(strings.TrimSpace(string(b)))
}
