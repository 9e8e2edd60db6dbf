package usb

import (
	"context"
	"errors"
	"io"
	"sort"
	"sync"

	"github.com/pilebones/go-udev/netlink"
)

// Config sets up a Watcher. Its zero value watches the real kernel.
type Config struct {
	Sysfs     string // sysfs root; zero means "/sys"
	MountInfo string // mount table; zero means "/proc/self/mountinfo"
	// Source supplies raw uevents; nil means the kernel's netlink socket.
	Source Source
	// RecvBuffer is the netlink receive buffer in bytes; zero means
	// DefaultRecvBuffer. Ignored with a Source.
	RecvBuffer int
}

// Watcher turns kernel uevents into Events for block devices. It reports the
// devices present when Run starts, and reads sysfs again when the kernel
// drops events, so no drive is missed or reported twice.
type Watcher struct {
	sysfs, mountinfo string
	src              Source
	closeOnce        sync.Once
	closeErr         error

	// present holds the devices reported Added and not yet Removed, by
	// name; only Run touches it.
	present map[string]blockDev
}

// NewWatcher opens the event source. Events that arrive before Run starts are
// kept in the socket's buffer.
func NewWatcher(cfg Config) (*Watcher, error) {
	w := &Watcher{sysfs: cfg.Sysfs, mountinfo: cfg.MountInfo, src: cfg.Source, present: map[string]blockDev{}}
	if w.sysfs == "" {
		w.sysfs = "/sys"
	}
	if w.mountinfo == "" {
		w.mountinfo = "/proc/self/mountinfo"
	}
	if w.src == nil {
		s, err := openNetlink(cfg.RecvBuffer)
		if err != nil {
			return nil, err
		}
		w.src = s
	}
	return w, nil
}

// Close closes the source; a running Run returns promptly. Close may be
// called more than once.
func (w *Watcher) Close() error {
	w.closeOnce.Do(func() { w.closeErr = w.src.Close() })
	return w.closeErr
}

// Run sends Added for every device present, then an Event for each change
// until ctx is done (it returns ctx.Err() and closes the Watcher), the source
// ends (nil), or the source fails or is closed (that error). Malformed
// messages and other subsystems' events are skipped. Run may be called once.
func (w *Watcher) Run(ctx context.Context, out chan<- Event) error {
	stop := context.AfterFunc(ctx, func() { w.Close() })
	defer stop()
	if err := w.rescan(ctx, out); err != nil {
		return w.ctxErr(ctx, err)
	}
	for {
		msg, err := w.src.Next()
		switch {
		case errors.Is(err, ErrOverflow):
			err = w.rescan(ctx, out)
		case errors.Is(err, io.EOF):
			return nil
		case err == nil:
			if ue, perr := parseUEvent(msg); perr == nil {
				err = w.handle(ctx, ue, out)
			}
		}
		if err != nil {
			return w.ctxErr(ctx, err)
		}
	}
}

func (w *Watcher) ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func (w *Watcher) send(ctx context.Context, out chan<- Event, ev Event) error {
	select {
	case out <- ev:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// handle turns one kernel uevent into Events. A change is judged by the size
// sysfs reports now: media present means Added (once); none, on a change
// flagged DISK_MEDIA_CHANGE, means Removed.
func (w *Watcher) handle(ctx context.Context, ue *netlink.UEvent, out chan<- Event) error {
	if ue.Env["SUBSYSTEM"] != "block" {
		return nil
	}
	d, ok := devFromEnv(ue.Env, ue.KObj)
	if !ok {
		return nil
	}
	action := string(ue.Action)
	media := ue.Env["DISK_MEDIA_CHANGE"] == "1"
	switch ue.Action {
	case netlink.ADD, netlink.CHANGE:
		d.size, _ = readSize(w.sysfs, d.name)
		switch {
		case d.size > 0:
			return w.appear(ctx, out, d, action, media)
		case media || ue.Action == netlink.ADD:
			return w.vanish(ctx, out, d, action, media)
		}
		// A plain change read after the media already left (sysfs is read
		// later than the kernel sent the event): the DISK_MEDIA_CHANGE
		// event that follows reports the removal.
	case netlink.REMOVE:
		return w.vanish(ctx, out, d, action, media)
	}
	return nil
}

// appear reports d as Added, after its disk if that is not yet known, or as
// Changed on a change to a device already reported.
func (w *Watcher) appear(ctx context.Context, out chan<- Event, d blockDev, action string, media bool) error {
	if old, ok := w.present[d.name]; ok {
		if action != "change" {
			return nil
		}
		d.pulled = old.pulled
		w.present[d.name] = d
		ev := d.event(Changed, action)
		ev.MediaChange = media || old.devpath != d.devpath
		return w.send(ctx, out, ev)
	}
	if !d.isDisk() {
		if _, ok := w.present[d.disk]; !ok {
			if disk, err := readDevice(w.sysfs, d.disk); err == nil && disk.size > 0 {
				if err := w.appear(ctx, out, disk, "scan", false); err != nil {
					return err
				}
			}
		}
	}
	w.present[d.name] = d
	ev := d.event(Added, action)
	ev.MediaChange = media
	return w.send(ctx, out, ev)
}

// vanish reports d as Removed if it was reported Added, after its partitions.
func (w *Watcher) vanish(ctx context.Context, out chan<- Event, d blockDev, action string, media bool) error {
	old, ok := w.present[d.name]
	if !ok {
		return nil
	}
	mounts, _ := readMountInfo(w.mountinfo)
	pulled := old.pulled || mounts.has(old.major, old.minor)
	if old.isDisk() {
		for _, p := range w.partitionsOf(old.name) {
			if err := w.vanish(ctx, out, p, action, media); err != nil {
				return err
			}
		}
		pulled = pulled || w.present[old.name].pulled
	} else if disk, ok := w.present[old.disk]; ok && pulled {
		disk.pulled = true
		w.present[old.disk] = disk
	}
	delete(w.present, d.name)
	ev := old.event(Removed, action)
	ev.Size, ev.MediaChange, ev.Pulled = 0, media, pulled
	return w.send(ctx, out, ev)
}

// partitionsOf returns the present partitions of disk, highest number first.
func (w *Watcher) partitionsOf(disk string) []blockDev {
	var ps []blockDev
	for _, p := range w.present {
		if !p.isDisk() && p.disk == disk {
			ps = append(ps, p)
		}
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].partn > ps[j].partn })
	return ps
}

// rescan compares sysfs with what was reported: devices gone are Removed
// (partitions first), new ones Added (disks first), all with Action "scan".
func (w *Watcher) rescan(ctx context.Context, out chan<- Event) error {
	devs, err := scanBlock(w.sysfs)
	if err != nil {
		return err
	}
	now := map[string]blockDev{}
	for _, d := range devs {
		now[d.name] = d
	}
	var gone []blockDev
	for name, old := range w.present {
		if d, ok := now[name]; !ok || d.devpath != old.devpath || d.major != old.major || d.minor != old.minor {
			gone = append(gone, old)
		}
	}
	sort.Slice(gone, func(i, j int) bool {
		if gone[i].isDisk() != gone[j].isDisk() {
			return gone[j].isDisk()
		}
		return gone[i].name < gone[j].name
	})
	for _, d := range gone {
		if err := w.vanish(ctx, out, d, "scan", false); err != nil {
			return err
		}
	}
	for _, d := range devs {
		if err := w.appear(ctx, out, d, "scan", false); err != nil {
			return err
		}
	}
	return nil
}
