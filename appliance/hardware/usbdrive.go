// Package hardware glues the box's drivers to the appliance (box step of
// the data path): USB drives from kernel events, SMART health, and the
// front panel, each offered as one of the small interfaces the appliance
// declares.
package hardware

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/clinicbox/clinicbox/appliance/drive"
	"github.com/clinicbox/clinicbox/drivers/usb"
)

// USBDrives turns the kernel's block-device events into drives: every
// device that carries a filesystem (a partition, or a whole disk without
// partitions, like a loop device) is a drive.
type USBDrives struct {
	RunDir     string // mount points live here (tmpfs or /perm)
	Watcher    usb.Config
	Identifier usb.Identifier
	Ejector    usb.Ejector
	// Accept decides which devices are backup drives; nil accepts only
	// devices on USB, so the box's own SD card and disks are never taken
	// for one.
	Accept func(usb.Identity) bool
	Log    *slog.Logger
}

// Run reports drives until ctx ends.
func (u *USBDrives) Run(ctx context.Context, out chan<- drive.Event) error {
	w, err := usb.NewWatcher(u.Watcher)
	if err != nil {
		return fmt.Errorf("hardware: watch drives: %w", err)
	}
	defer w.Close()
	events := make(chan usb.Event, 16)
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx, events) }()
	present := map[string]*usbDrive{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			if ctx.Err() != nil {
				return nil
			}
			return err
		case ev := <-events:
			for _, de := range u.track(present, ev) {
				out <- de
			}
		}
	}
}

// track follows the kernel's event in present (the drives by device
// name) and returns the drive events it makes. A device name says nothing
// about which drive is behind it: the kernel gives a detached loop
// device's number, or a pulled disk's sdX, to whatever comes next, and a
// fast swap can reach the box as a change of the device (or, after a
// rescan, as a second add) instead of a removal and an addition. So a
// present device whose media changed, or whose size, filesystem or serial
// differs, is a drive that left and another that came.
func (u *USBDrives) track(present map[string]*usbDrive, ev usb.Event) []drive.Event {
	switch ev.Kind {
	case usb.Added, usb.Changed:
		old := present[ev.Name]
		var out []drive.Event
		id, err := u.Identifier.Identify(ev.Name)
		if old != nil {
			if err == nil && !ev.MediaChange && sameDrive(old.id, id) {
				return nil // reported again or rescanned: the same drive
			}
			out = append(out, u.leave(present, ev.Name))
		}
		if err != nil || id.FS.Type == "" || !u.accepts(id) {
			return out // no filesystem here (its partitions may have one), or not a backup drive
		}
		d := &usbDrive{u: u, id: id}
		present[ev.Name] = d
		return append(out, drive.Event{Arrived: true, Drive: d})
	case usb.Removed:
		if present[ev.Name] != nil {
			return []drive.Event{u.leave(present, ev.Name)}
		}
	}
	return nil
}

// leave marks the drive at name gone and returns its removal.
func (u *USBDrives) leave(present map[string]*usbDrive, name string) drive.Event {
	d := present[name]
	delete(present, name)
	d.gone()
	return drive.Event{Drive: d}
}

// sameDrive reports whether two identities read from one device name are
// the same drive: the same size, filesystem (type, UUID, label) and USB
// serial.
func sameDrive(a, b usb.Identity) bool {
	serial := func(id usb.Identity) string {
		if id.USB == nil {
			return ""
		}
		return id.USB.Serial
	}
	return a.Size == b.Size && a.FS == b.FS && serial(a) == serial(b)
}

// accepts reports whether a device is a backup drive.
func (u *USBDrives) accepts(id usb.Identity) bool {
	if u.Accept == nil {
		return id.USB != nil
	}
	return u.Accept(id)
}

type usbDrive struct {
	u  *USBDrives
	id usb.Identity

	mu     sync.Mutex
	m      *usb.Mounted
	rw     bool
	pulled bool
}

func (d *usbDrive) Name() string { return d.id.Name }

func (d *usbDrive) Info() drive.Info {
	info := drive.Info{Disk: "/dev/" + d.id.Disk, FSUUID: d.id.FS.UUID, Label: d.id.FS.Label, Capacity: d.id.Size}
	if d.id.USB != nil {
		info.Serial, info.Bridge = d.id.USB.Serial, d.id.USB.Bridge
	}
	return info
}

func (d *usbDrive) Mount(ctx context.Context, writable bool) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pulled {
		return "", errors.New("hardware: the drive is gone")
	}
	if d.m == nil {
		m, err := usb.MountReadOnly(d.u.RunDir, d.id)
		if err != nil {
			return "", err
		}
		d.m = m
	}
	if writable != d.rw {
		if err := d.m.Remount(writable); err != nil {
			return "", err
		}
		d.rw = writable
	}
	return d.m.Dir, nil
}

func (d *usbDrive) Unmount(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil {
		return nil
	}
	err := d.m.Unmount(ctx)
	if err == nil {
		d.m, d.rw = nil, false
	}
	return err
}

func (d *usbDrive) Eject(ctx context.Context) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var mounts []*usb.Mounted
	if d.m != nil {
		mounts = append(mounts, d.m)
	}
	ej, err := d.u.Ejector.Eject(ctx, d.id.Disk, mounts...)
	if ej.Unmounted {
		d.m, d.rw = nil, false
	}
	if err != nil {
		return false, err
	}
	// A loop device has no SCSI device to delete: flushed and unmounted is
	// as safe as it gets.
	return ej.SafeToRemove() || (ej.Unmounted && ej.Flushed && ej.NoDelete), nil
}

// gone marks a drive that left the box.
func (d *usbDrive) gone() {
	d.mu.Lock()
	d.pulled = true
	d.mu.Unlock()
}

// Release drops the mount of a drive pulled without eject, once the
// appliance has stopped writing to it. The kernel has lost the device, so
// nothing more can reach it: a lazy unmount only cleans the mount table.
func (d *usbDrive) Release() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m != nil {
		unix.Unmount(d.m.Dir, unix.MNT_DETACH)
		os.Remove(d.m.Dir)
		d.m = nil
	}
}
