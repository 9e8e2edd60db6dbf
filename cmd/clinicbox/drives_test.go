package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/clinicbox/clinicbox/drivers/usb"
)

func TestAcceptDrives(t *testing.T) {
	sysfs := t.TempDir()
	backing := map[string]string{"loop0": "/srv/drives/son.img", "loop1": "/srv/other/x.img", "loop2": "/srv/drives-evil/y.img"}
	for dev, file := range backing {
		dir := filepath.Join(sysfs, "class/block", dev, "loop")
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "backing_file"), []byte(file+"\n"), 0o644)
	}
	usbID := usb.Identity{Name: "sdb1", Disk: "sdb", USB: &usb.USBDevice{Bridge: "0781:5581"}}
	loop := func(d string) usb.Identity { return usb.Identity{Name: d, Disk: d} }
	for _, tc := range []struct {
		dir  string
		id   usb.Identity
		want bool
	}{
		{"", usbID, true},
		{"", loop("loop0"), false},
		{"", usb.Identity{Name: "mmcblk0p2", Disk: "mmcblk0"}, false},
		{"/srv/drives", usbID, true},
		{"/srv/drives", loop("loop0"), true},
		{"/srv/drives", loop("loop1"), false},
		{"/srv/drives", loop("loop2"), false},
		{"/srv/drives", loop("loop7"), false}, // no backing file: not attached
		{"/srv/drives", usb.Identity{Name: "nvme0n1", Disk: "nvme0n1"}, false},
	} {
		if got := acceptDrives(sysfs, tc.dir)(tc.id); got != tc.want {
			t.Errorf("-loop-drives %q, %s: got %v; want %v", tc.dir, tc.id.Name, got, tc.want)
		}
	}
}
