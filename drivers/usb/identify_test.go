package usb_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/clinicbox/clinicbox/drivers/usb"
	"github.com/clinicbox/clinicbox/drivers/usb/usbtest"
)

// TestIdentifyFakeSysfs identifies devices of the recorded Pi sysfs tree; the
// device nodes are image files in a directory standing in for /dev.
func TestIdentifyFakeSysfs(t *testing.T) {
	dev := t.TempDir()
	img := usbtest.MakeImage(t, usbtest.Image{Type: "vfat", Label: "SON", ID: "0badcafe", Size: 64 << 20})
	if err := os.Rename(img, filepath.Join(dev, "sdb1")); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"sda1", "mmcblk0p2"} {
		if err := os.WriteFile(filepath.Join(dev, n), make([]byte, 4096), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	x := usb.Identifier{Sysfs: "testdata/sys", Dev: dev}
	tests := []struct {
		name string
		want usb.Identity
	}{
		{"sdb1", usb.Identity{Name: "sdb1", Disk: "sdb", Partition: 1, DevNode: filepath.Join(dev, "sdb1"),
			Size: 60061696 * 512, Removable: true,
			USB: &usb.USBDevice{Vendor: "0781", Product: "5567", Bridge: "0781:5567", Serial: "4C530001230815112233",
				Manufacturer: "SanDisk", ProductName: "Cruzer Blade",
				SysPath: "/devices/platform/scb/fd500000.pcie/pci0000:00/0000:00:00.0/0000:01:00.0/usb1/1-1/1-1.3"},
			FS: usb.Filesystem{Type: "vfat", Variant: "FAT32", Label: "SON", UUID: "0BAD-CAFE"}}},
		{"sda1", usb.Identity{Name: "sda1", Disk: "sda", Partition: 1, DevNode: filepath.Join(dev, "sda1"),
			Size: 3907026944 * 512,
			USB: &usb.USBDevice{Vendor: "152d", Product: "0578", Bridge: "152d:0578", Serial: "0000000000A1B2",
				Manufacturer: "JMicron", ProductName: "USB to ATA/ATAPI Bridge",
				SysPath: "/devices/platform/scb/fd500000.pcie/pci0000:00/0000:00:00.0/0000:01:00.0/usb2/2-1"}}},
		{"mmcblk0p2", usb.Identity{Name: "mmcblk0p2", Disk: "mmcblk0", Partition: 2, DevNode: filepath.Join(dev, "mmcblk0p2"),
			Size: 62062592 * 512}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := x.Identify(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if (got.USB == nil) != (tt.want.USB == nil) || (got.USB != nil && *got.USB != *tt.want.USB) {
				t.Errorf("got USB %+v; want %+v", got.USB, tt.want.USB)
			}
			got.USB, tt.want.USB = nil, nil
			if got != tt.want {
				t.Errorf("got %+v; want %+v", got, tt.want)
			}
		})
	}
}

func TestIdentifyErrors(t *testing.T) {
	x := usb.Identifier{Sysfs: "testdata/sys", Dev: t.TempDir()}
	if _, err := x.Identify("sdz"); err == nil {
		t.Error("got no error for a device missing from sysfs; want one")
	}
	// A device node that cannot be read still yields the sysfs part.
	id, err := x.Identify("sdb")
	if err == nil || id.USB == nil || id.USB.Serial != "4C530001230815112233" {
		t.Errorf("got %+v, %v; want the USB identity and an error", id, err)
	}
}
