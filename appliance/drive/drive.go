// Package drive is a backup drive as the box sees it (drive step of the data
// path): the small interface that real USB drives and simulated ones both
// offer to the appliance, and the events of drives arriving and leaving.
package drive

import "context"

// Drive is a drive plugged into the box, as the appliance uses it.
type Drive interface {
	// Name is the kernel's name for it ("sda1"), or a simulated drive's.
	Name() string
	// Info is what the hardware and the filesystem say about it.
	Info() Info
	// Mount mounts the drive's filesystem, read-only unless writable, and
	// returns the mount point. Mounting again with writable set remounts.
	Mount(ctx context.Context, writable bool) (string, error)
	// Unmount flushes and unmounts the drive, leaving it attached.
	Unmount(ctx context.Context) error
	// Eject flushes, unmounts and powers the drive down; it reports
	// whether the drive is now safe to remove.
	Eject(ctx context.Context) (bool, error)
}

// Info identifies a drive's hardware and filesystem.
type Info struct {
	Disk     string // the whole disk's device node ("/dev/sda"), for health checks; empty when simulated
	Serial   string // the drive's or its bridge's serial; may be empty
	Bridge   string // USB vendor:product of the bridge; empty when not USB
	FSUUID   string
	Label    string
	Capacity int64
}

// Event is a drive arriving or leaving.
type Event struct {
	Arrived bool
	Drive   Drive
}
