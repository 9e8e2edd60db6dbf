package usb_test

import (
	"path/filepath"
	"testing"

	"github.com/clinicbox/clinicbox/drivers/usb"
)

// Disks lists the recorded Pi's whole disks, partitions left out, with the
// USB bridge of each disk on USB and none for the SD card and loop devices;
// a disk without media (loop0) is left out.
func TestDisksFakeSysfs(t *testing.T) {
	dev := t.TempDir()
	disks, err := usb.Identifier{Sysfs: "testdata/sys", Dev: dev}.Disks()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, d := range disks {
		if d.Partition != 0 || d.Disk != d.Name || d.DevNode != filepath.Join(dev, d.Name) || d.Size == 0 {
			t.Errorf("%s: %+v; want a whole disk with its node under %s and a size", d.Name, d, dev)
		}
		got[d.Name] = ""
		if d.USB != nil {
			got[d.Name] = d.USB.Bridge
		}
	}
	want := map[string]string{"mmcblk0": "", "sda": "152d:0578", "sdb": "0781:5567", "loop1": ""} // loop0 has no media
	for name, bridge := range want {
		if b, ok := got[name]; !ok || b != bridge {
			t.Errorf("%s: listed %v with bridge %q; want listed with %q (all: %v)", name, ok, b, bridge, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got disks %v; want %v", got, want)
	}
}
