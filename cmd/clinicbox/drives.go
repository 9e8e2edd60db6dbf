package main

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/clinicbox/clinicbox/drivers/usb"
)

// acceptDrives decides which block devices are backup drives: those on USB,
// and, when loopDir is set (-loop-drives, for tests and demos on machines
// without USB), loop devices whose backing file lies in loopDir. Only loop
// devices attached from that directory are taken, so another program's loop
// devices on the same machine are never mounted or written.
func acceptDrives(sysfs, loopDir string) func(usb.Identity) bool {
	if loopDir != "" {
		loopDir, _ = filepath.Abs(loopDir)
	}
	return func(id usb.Identity) bool {
		if id.USB != nil {
			return true
		}
		if loopDir == "" || !strings.HasPrefix(id.Disk, "loop") {
			return false
		}
		b, err := os.ReadFile(filepath.Join(sysfs, "class/block", id.Disk, "loop/backing_file"))
		if err != nil {
			return false
		}
		rel, err := filepath.Rel(loopDir, strings.TrimSpace(string(b)))
		return err == nil && rel != "." && filepath.IsLocal(rel)
	}
}
