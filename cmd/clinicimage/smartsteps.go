package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/clinicbox/clinicbox/appliance/status"
)

// What qemu's device models report (qemu 7.2, hw/nvme and hw/ide): the
// NVMe controller's model name, its composite temperature of 323 K and
// power-on hours counted from the machine's start (0 in a smoke); the ATA
// disk's model name, its airflow temperature attribute (190) of 31 °C and
// its power-on hours attribute (9) of 1. The serial numbers are the ones
// smokeDisks gives them.
var wantDisks = []status.Disk{
	{Name: "nvme0n1", Protocol: "nvme", Model: "QEMU NVMe Ctrl", Serial: "CBNVME0001", Health: status.Health{Verdict: "ok", Temperature: 50}},
	{Name: "sda", Protocol: "ata", Model: "QEMU HARDDISK", Serial: "CBSATA0001", Health: status.Health{Verdict: "ok", Temperature: 31, PowerOnHours: 1}},
	{Name: "vda", Health: status.Health{Verdict: "unknown"}},
}

// ownDisksHealth waits until the status lists the machine's NVMe and SATA
// disks with the health the box read through its own SMART code, and the
// virtual boot disk as unknown, with no drive taken in for backups.
func ownDisksHealth(ctx context.Context, s *smoke) error {
	return s.pollStatus(ctx, func(st *status.Status) error {
		if err := disksAsQemuReports(st, wantDisks); err != nil {
			return err
		}
		for _, d := range st.Disks {
			fmt.Fprintf(s.out, "smoke: disk %s (%s) %q %q: %s, %d °C, %d hours %v\n", d.Name, d.Protocol, d.Model, d.Serial,
				d.Health.Verdict, d.Health.Temperature, d.Health.PowerOnHours, d.Health.Reasons)
		}
		return nil
	})
}

// disksAsQemuReports checks the status's disks against want: the same
// names, and for each its protocol, model, serial, verdict and
// temperature and power-on hours. None may be in the box as a backup drive.
func disksAsQemuReports(st *status.Status, want []status.Disk) error {
	if st.InBox != nil {
		return failNowf("%s is in the box as a drive (%s); the box's own disks are never backup drives", st.InBox.Drive, st.InBox.Decision)
	}
	if len(st.Disks) == 0 {
		return errors.New("the status lists no disks yet")
	}
	got := map[string]status.Disk{}
	for _, d := range st.Disks {
		got[d.Name] = d
	}
	for _, w := range want {
		d, ok := got[w.Name]
		switch {
		case !ok:
			return failNowf("the status lists disks %v; want %s among them", names(st.Disks), w.Name)
		case d.Protocol != w.Protocol || d.Model != w.Model || d.Serial != w.Serial:
			return failNowf("%s: %q %q %q; want %q %q %q", w.Name, d.Protocol, d.Model, d.Serial, w.Protocol, w.Model, w.Serial)
		case d.Health.Verdict != w.Health.Verdict || d.Health.Temperature != w.Health.Temperature || d.Health.PowerOnHours != w.Health.PowerOnHours:
			return failNowf("%s: %s at %d °C, %d hours (%v); want %s at %d °C, %d hours", w.Name, d.Health.Verdict, d.Health.Temperature,
				d.Health.PowerOnHours, d.Health.Reasons, w.Health.Verdict, w.Health.Temperature, w.Health.PowerOnHours)
		}
	}
	if len(got) != len(want) {
		return failNowf("the status lists disks %v; want %d", names(st.Disks), len(want))
	}
	return nil
}

func names(disks []status.Disk) []string {
	var out []string
	for _, d := range disks {
		out = append(out, d.Name)
	}
	return out
}

// usbHealthUnknown checks that the enrolled USB drive's health is
// "unknown" with the reason, not a value: qemu's usb-storage reports the
// bridge 46f4:0001, which is not on the allowlist of bridges known to pass
// SMART commands, so the box does not ask it.
func usbHealthUnknown(ctx context.Context, s *smoke) error {
	return s.pollStatus(ctx, func(st *status.Status) error {
		for _, d := range st.Drives {
			if d.ID != s.drive.id {
				continue
			}
			h := d.Health
			if h.Verdict != "unknown" || h.Temperature != 0 || h.PowerOnHours != 0 || h.BadSectors != 0 ||
				!strings.Contains(strings.Join(h.Reasons, " "), "46f4:0001") {
				return failNowf("%s's health: %+v; want unknown, no values, naming the bridge 46f4:0001", d.Generation, h)
			}
			fmt.Fprintf(s.out, "smoke: %s's health: %s: %s\n", d.Generation, h.Verdict, strings.Join(h.Reasons, " "))
			return nil
		}
		return fmt.Errorf("the status lists no drive %s", s.drive.id)
	})
}
