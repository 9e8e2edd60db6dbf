// Package usb notices, identifies, mounts and safely ejects the backup
// drives (drive step of the data path), from kernel uevents and sysfs alone
// (a gokrazy box runs no udev).
package usb

import "fmt"

// Kind says what happened to a block device.
type Kind int

const (
	// Added: a disk or partition with media appeared (plugged in, media
	// inserted, loop device attached, or found by a sysfs scan).
	Added Kind = iota + 1
	// Removed: the device or its media is gone (removed, pulled, loop
	// device detached).
	Removed
	// Changed: a present device changed (resized, rescanned).
	Changed
)

func (k Kind) String() string {
	switch k {
	case Added:
		return "added"
	case Removed:
		return "removed"
	case Changed:
		return "changed"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Event is a change to a block device (SUBSYSTEM=block, a disk or partition).
// A disk's Added comes before its partitions'; its Removed after theirs.
type Event struct {
	Kind Kind
	// Action is the kernel's action ("add", "remove", "change"), or "scan"
	// when the change was found by reading sysfs: at start, or after the
	// receive buffer overflowed and events were lost.
	Action string
	Name   string // kernel name: "sdb1", "loop3"
	// Disk is the whole disk holding the device: "sdb" for "sdb1"; the
	// same as Name for a disk.
	Disk      string
	Partition int    // partition number; 0 for a whole disk
	DevNode   string // device node: "/dev/sdb1"
	DevPath   string // sysfs path below the sysfs root: "/devices/.../block/sdb/sdb1"
	Major     uint32
	Minor     uint32
	Size      int64 // bytes, read from sysfs; 0 once removed
	// MediaChange reports that the kernel flagged the event as media
	// arriving or leaving (DISK_MEDIA_CHANGE=1, sent when a loop device
	// is detached or a card leaves its reader).
	MediaChange bool
	// Pulled reports, on Removed, that the device (or for a disk, one of
	// its partitions) was still mounted: the drive was pulled without eject.
	Pulled bool
}

// IsDisk reports whether the event is about a whole disk, not a partition.
func (e Event) IsDisk() bool { return e.Partition == 0 && e.Disk == e.Name }

func (e Event) String() string {
	s := fmt.Sprintf("%s %s (%s", e.Kind, e.Name, e.Action)
	if e.Pulled {
		s += ", pulled without eject"
	}
	return s + ")"
}
