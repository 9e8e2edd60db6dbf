package main

import (
	"slices"
	"testing"

	"github.com/clinicbox/clinicbox/appliance/status"
)

func TestDiskArgs(t *testing.T) {
	got := diskArgs([]vmDisk{
		{ID: "nvme0", Bus: busNVMe, Image: "/w/a,b.img", Serial: "N1"},
		{ID: "sata0", Bus: busAHCI, Image: "/w/s0.img", Serial: "S0"},
		{ID: "sata1", Bus: busAHCI, Image: "/w/s1.img", Serial: "S1"},
	})
	want := []string{
		"-drive", "if=none,id=nvme0,file=/w/a,,b.img,format=raw", "-device", "nvme,serial=N1,drive=nvme0",
		"-drive", "if=none,id=sata0,file=/w/s0.img,format=raw", "-device", "ahci,id=ahci0", "-device", "ide-hd,bus=ahci0.0,drive=sata0,serial=S0",
		"-drive", "if=none,id=sata1,file=/w/s1.img,format=raw", "-device", "ide-hd,bus=ahci0.1,drive=sata1,serial=S1",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// The disk check accepts the disks as qemu reports them and stops at once
// on a wrong value, a missing disk or a disk taken in as a drive.
func TestDisksAsQemuReports(t *testing.T) {
	good := func() *status.Status { return &status.Status{Disks: slices.Clone(wantDisks)} }
	if err := disksAsQemuReports(good(), wantDisks); err != nil {
		t.Fatalf("as qemu reports them: %v", err)
	}
	if err := disksAsQemuReports(&status.Status{}, wantDisks); err == nil || isFailNow(err) {
		t.Errorf("before the survey: %v; want an error to wait on", err)
	}
	for name, spoil := range map[string]func(*status.Status){
		"temperature made up": func(st *status.Status) { st.Disks[0].Health.Temperature = 0 },
		"wrong serial":        func(st *status.Status) { st.Disks[1].Serial = "QM00001" },
		"hours made up":       func(st *status.Status) { st.Disks[1].Health.PowerOnHours = 0 },
		"disk missing":        func(st *status.Status) { st.Disks = st.Disks[1:] },
		"a disk too many":     func(st *status.Status) { st.Disks = append(st.Disks, status.Disk{Name: "sdb"}) },
		"taken as a drive":    func(st *status.Status) { st.InBox = &status.InBox{Decision: "unknown drive"} },
	} {
		st := good()
		spoil(st)
		if err := disksAsQemuReports(st, wantDisks); !isFailNow(err) {
			t.Errorf("%s: got %v; want a failNow error", name, err)
		}
	}
}
