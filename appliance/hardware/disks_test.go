package hardware

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/drivers/smart"
	"github.com/clinicbox/clinicbox/drivers/usb"
)

// fakeSysfs lays out block devices as the kernel does: a directory under
// devices with uevent and size, linked from class/block; usb puts an
// idVendor/idProduct pair on an ancestor.
func fakeSysfs(t *testing.T, devs map[string]string, usbDisk string) string {
	t.Helper()
	root := t.TempDir()
	write := func(p, s string) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, parent := range devs {
		dir := filepath.Join(root, "devices", parent, "block", name)
		write(filepath.Join(dir, "uevent"), "MAJOR=8\nMINOR=0\nDEVNAME="+name+"\nDEVTYPE=disk\n")
		write(filepath.Join(dir, "size"), "2048\n")
		if err := os.MkdirAll(filepath.Join(root, "class/block"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(dir, filepath.Join(root, "class/block", name)); err != nil {
			t.Fatal(err)
		}
	}
	usbDir := filepath.Join(root, "devices", devs[usbDisk])
	write(filepath.Join(filepath.Dir(usbDir), "idVendor"), "46f4\n")
	write(filepath.Join(filepath.Dir(usbDir), "idProduct"), "0001\n")
	return root
}

// The survey asks the NVMe and the SATA disk, lists the virtual boot disk
// as unknown without asking it, and leaves out the USB disk (a backup
// drive, behind the bridge allowlist) and the loop device.
func TestSurveyListsTheBoxsOwnDisks(t *testing.T) {
	sysfs := fakeSysfs(t, map[string]string{
		"nvme0n1": "pci0000:00/0000:00:04.0/nvme/nvme0",
		"sda":     "pci0000:00/0000:00:05.0/ata1/host0/target0:0:0/0:0:0:0",
		"sdb":     "pci0000:00/0000:00:06.0/usb2/2-1/2-1:1.0/host1/target1:0:0/1:0:0:0",
		"vda":     "pci0000:00/0000:00:02.0/virtio1",
		"loop0":   "virtual",
	}, "sdb")
	var mu sync.Mutex
	var asked []string
	c := &smart.Checker{Read: func(dev string) (smart.Report, error) {
		mu.Lock()
		asked = append(asked, dev)
		mu.Unlock()
		if filepath.Base(dev) == "nvme0n1" {
			return smart.Report{Protocol: "nvme", Verdict: smart.OK, Model: "QEMU NVMe Ctrl", Serial: "NVME0001", Temperature: 50}, nil
		}
		return smart.Report{Protocol: "ata", Verdict: smart.OK, Model: "QEMU HARDDISK", Serial: "ATA0001", PowerOnHours: 1}, nil
	}}
	h := SMARTHealth{Checker: c, Identifier: usb.Identifier{Sysfs: sysfs, Dev: "/dev"}}
	disks, err := h.Survey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]status.Disk{}
	for _, d := range disks {
		d.Health.Checked = time.Time{}
		got[d.Name] = d
	}
	want := map[string]status.Disk{
		"nvme0n1": {Name: "nvme0n1", Model: "QEMU NVMe Ctrl", Serial: "NVME0001", Protocol: "nvme", Size: 2048 * 512, Health: status.Health{Verdict: "ok", Temperature: 50}},
		"sda":     {Name: "sda", Model: "QEMU HARDDISK", Serial: "ATA0001", Protocol: "ata", Size: 2048 * 512, Health: status.Health{Verdict: "ok", PowerOnHours: 1}},
		"vda":     {Name: "vda", Size: 2048 * 512, Health: status.Health{Verdict: "unknown", Reasons: []string{noSMART("vda")}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if want := []string{"/dev/nvme0n1", "/dev/sda"}; !reflect.DeepEqual(asked, want) {
		t.Errorf("asked %v; want only %v", asked, want)
	}
}
