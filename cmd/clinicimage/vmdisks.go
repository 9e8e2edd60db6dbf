package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// diskBus is how a vmDisk is attached.
type diskBus int

const (
	busNVMe diskBus = iota + 1 // an NVMe controller of its own
	busAHCI                    // an ATA disk on the AHCI controller "ahci0"
)

// vmDisk is a disk the machine has from boot on besides its boot disk, so
// that the box's SMART code meets device models it did not write: qemu's
// NVMe controller answers the SMART / health log page, its ATA disks
// answer SMART READ DATA.
type vmDisk struct {
	ID     string // qemu's drive id
	Bus    diskBus
	Image  string // raw image file
	Serial string // the serial number the disk reports
}

// smokeDisks are the smoke machine's NVMe and SATA disks.
var smokeDisks = []vmDisk{
	{ID: "nvme0", Bus: busNVMe, Serial: "CBNVME0001"},
	{ID: "sata0", Bus: busAHCI, Serial: "CBSATA0001"},
}

// makeDisks creates an empty sparse image of size bytes for each disk in
// dir and returns the disks with their images.
func makeDisks(dir string, disks []vmDisk, size int64) ([]vmDisk, error) {
	out := make([]vmDisk, len(disks))
	for i, d := range disks {
		d.Image = filepath.Join(dir, d.ID+".img")
		f, err := os.Create(d.Image)
		if err != nil {
			return nil, err
		}
		err = f.Truncate(size)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("vm: disk %s: %w", d.ID, err)
		}
		out[i] = d
	}
	return out, nil
}

// diskArgs are qemu's arguments for the disks: one NVMe controller per
// NVMe disk, and one AHCI controller with a port per ATA disk.
func diskArgs(disks []vmDisk) []string {
	var args []string
	port := 0
	for _, d := range disks {
		args = append(args, "-drive", "if=none,id="+d.ID+",file="+qemuEscape(d.Image)+",format=raw")
		switch d.Bus {
		case busNVMe:
			args = append(args, "-device", "nvme,serial="+qemuEscape(d.Serial)+",drive="+d.ID)
		case busAHCI:
			if port == 0 {
				args = append(args, "-device", "ahci,id=ahci0")
			}
			args = append(args, "-device", fmt.Sprintf("ide-hd,bus=ahci0.%d,drive=%s,serial=%s", port, d.ID, qemuEscape(d.Serial)))
			port++
		}
	}
	return args
}

// qemuEscape doubles commas, qemu's escape for a comma in an option value.
func qemuEscape(v string) string { return strings.ReplaceAll(v, ",", ",,") }
