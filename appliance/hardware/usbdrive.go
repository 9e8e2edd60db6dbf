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
			switch ev.Kind {
			case usb.Added:
				if present[ev.Name] != nil {
					continue
				}
				id, err := u.Identifier.Identify(ev.Name)
				if err != nil || id.FS.Type == "" {
					continue // no filesystem here: its partitions may have one
				}
				if accept := u.Accept; (accept == nil && id.USB == nil) || (accept != nil && !accept(id)) {
					continue
				}
				d := &usbDrive{u: u, id: id}
				present[ev.Name] = d
				out <- drive.Event{Arrived: true, Drive: d}
			case usb.Removed:
				if d := present[ev.Name]; d != nil {
					delete(present, ev.Name)
					d.gone()
					out <- drive.Event{Drive: d}
				}
			}
		}
	}
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
