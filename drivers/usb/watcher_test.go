package usb_test

import (
	"context"
	"errors"
	"github.com/clinicbox/clinicbox/drivers/testenv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/drivers/usb"
	"github.com/clinicbox/clinicbox/drivers/usb/usbtest"
)

// harness runs a Watcher over a copy of the recorded sysfs tree, fed by a
// usbtest.Source.
type harness struct {
	t         *testing.T
	sys       string
	mountinfo string
	src       *usbtest.Source
	out       chan usb.Event
	done      chan error
	cancel    context.CancelFunc
}

// startWatcher copies testdata/sys, removes the named devices from it (not yet
// plugged in), and starts Run.
func startWatcher(t *testing.T, absent ...string) *harness {
	h := &harness{t: t, sys: usbtest.CopyTree(t, "testdata/sys"), src: usbtest.NewSource(),
		out: make(chan usb.Event), done: make(chan error, 1)}
	h.mountinfo = filepath.Join(t.TempDir(), "mountinfo")
	h.mount()
	for _, name := range absent {
		h.unplug(name)
	}
	w, err := usb.NewWatcher(usb.Config{Sysfs: h.sys, MountInfo: h.mountinfo, Source: h.src})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- w.Run(ctx, h.out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-h.done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	})
	return h
}

// unplug and plug take a device's /sys/class/block entry away and back.
func (h *harness) unplug(name string) {
	if err := os.MkdirAll(filepath.Join(h.sys, "class/away"), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(h.sys, "class/block", name), filepath.Join(h.sys, "class/away", name)); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) plug(name string) {
	if err := os.Rename(filepath.Join(h.sys, "class/away", name), filepath.Join(h.sys, "class/block", name)); err != nil {
		h.t.Fatal(err)
	}
}

// mount writes a mount table holding the given major:minor devices.
func (h *harness) mount(devs ...string) {
	s := "22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
	for i, d := range devs {
		s += strings.Join([]string{"3" + string(rune('0'+i)), "22", d, "/", "/run/clinicbox/drive\\040" + d, "rw,noatime - ext4 /dev/x rw"}, " ") + "\n"
	}
	if err := os.WriteFile(h.mountinfo, []byte(s), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) setSize(name, sectors string) {
	if err := os.WriteFile(filepath.Join(h.sys, "class/block", name, "size"), []byte(sectors+"\n"), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) send(msgs ...[]byte) {
	for _, m := range msgs {
		h.src.Send(m)
	}
}

// expect receives events and compares their kind, name, action and pulled flag
// with want, written as "added sdb (add)" (Event.String).
func (h *harness) expect(want ...string) []usb.Event {
	h.t.Helper()
	var got []usb.Event
	for _, w := range want {
		select {
		case ev := <-h.out:
			got = append(got, ev)
			if ev.String() != w {
				h.t.Fatalf("event %d: got %q; want %q", len(got), ev, w)
			}
		case err := <-h.done:
			h.t.Fatalf("Run ended with %v; waiting for %q", err, w)
		case <-time.After(testenv.Patience(h.t)):
			h.t.Fatalf("no event; want %q", w)
		}
	}
	return got
}

var scanAll = []string{"added loop1 (scan)", "added mmcblk0 (scan)", "added sda (scan)", "added sdb (scan)",
	"added mmcblk0p1 (scan)", "added mmcblk0p2 (scan)", "added sda1 (scan)", "added sdb1 (scan)"}

func TestWatcherScansAtStartDisksFirst(t *testing.T) {
	h := startWatcher(t)
	evs := h.expect(scanAll...)
	sdb1 := evs[7]
	want := usb.Event{Kind: usb.Added, Action: "scan", Name: "sdb1", Disk: "sdb", Partition: 1, DevNode: "/dev/sdb1",
		DevPath: "/devices/platform/scb/fd500000.pcie/pci0000:00/0000:00:00.0/0000:01:00.0/usb1/1-1/1-1.3/1-1.3:1.0/host1/target1:0:0/1:0:0:0/block/sdb/sdb1",
		Major:   8, Minor: 17, Size: 60061696 * 512}
	if sdb1 != want {
		t.Errorf("got %+v; want %+v", sdb1, want)
	}
	if !evs[3].IsDisk() || sdb1.IsDisk() {
		t.Errorf("got IsDisk %v for sdb, %v for sdb1; want true, false", evs[3].IsDisk(), sdb1.IsDisk())
	}
	h.src.End()
	if err := <-h.done; err != nil {
		t.Errorf("got Run error %v after the source ended; want nil", err)
	}
	h.done <- nil
}

func TestWatcherUSBStick(t *testing.T) {
	add := usbtest.MustRecording(t, "testdata/usb-stick-add.uevents")
	remove := usbtest.MustRecording(t, "testdata/usb-stick-remove.uevents")
	tests := []struct {
		name    string
		mounted []string
		want    []string
	}{
		{"ejected", nil, []string{"removed sdb1 (remove)", "removed sdb (remove)"}},
		{"pulled while mounted", []string{"8:17"}, []string{"removed sdb1 (remove, pulled without eject)", "removed sdb (remove, pulled without eject)"}},
		{"whole-disk filesystem pulled", []string{"8:16"}, []string{"removed sdb1 (remove)", "removed sdb (remove, pulled without eject)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startWatcher(t, "sdb", "sdb1")
			h.expect(without(scanAll, "sdb")...)
			h.plug("sdb")
			h.plug("sdb1")
			go h.send(add...)
			h.expect("added sdb (add)", "added sdb1 (add)")
			h.mount(tt.mounted...)
			h.unplug("sdb1")
			h.unplug("sdb")
			go h.send(remove...)
			h.expect(tt.want...)
		})
	}
}

func without(evs []string, name string) []string {
	var out []string
	for _, e := range evs {
		if !strings.Contains(e, " "+name) {
			out = append(out, e)
		}
	}
	return out
}

func TestWatcherPartitionBeforeDiskStillReportsDiskFirst(t *testing.T) {
	h := startWatcher(t, "sdb", "sdb1")
	h.expect(without(scanAll, "sdb")...)
	h.plug("sdb")
	h.plug("sdb1")
	go h.send(usbtest.MustRecording(t, "testdata/partname-equals.uevents")...)
	h.expect("added sdb (scan)", "added sdb1 (add)")
	// The disk's own add, arriving late, is not reported twice.
	go h.send(usbtest.MustRecording(t, "testdata/usb-stick-add.uevents")...)
	go h.src.Send([]byte("remove@/devices/virtual/block/loop1\x00ACTION=remove\x00DEVPATH=/devices/virtual/block/loop1\x00SUBSYSTEM=block\x00MAJOR=7\x00MINOR=1\x00DEVNAME=loop1\x00DEVTYPE=disk\x00SEQNUM=9\x00"))
	h.expect("removed loop1 (remove)")
}

func TestWatcherOverflowRescans(t *testing.T) {
	h := startWatcher(t, "sdb", "sdb1")
	h.expect(without(scanAll, "sdb")...)
	// While events were lost: the stick came, the enclosure went.
	h.plug("sdb")
	h.plug("sdb1")
	h.unplug("sda1")
	h.unplug("sda")
	go h.src.Overflow()
	h.expect("removed sda1 (scan)", "removed sda (scan)", "added sdb (scan)", "added sdb1 (scan)")
	// Another overflow with nothing changed reports nothing: the next
	// event is the one after it.
	go func() {
		h.src.Overflow()
		h.send([]byte("change@/devices/virtual/block/loop1\x00ACTION=change\x00DEVPATH=/devices/virtual/block/loop1\x00SUBSYSTEM=block\x00MAJOR=7\x00MINOR=1\x00DEVNAME=loop1\x00DEVTYPE=disk\x00SEQNUM=9\x00"))
	}()
	h.expect("changed loop1 (change)")
}

// TestWatcherLoopRecording replays events recorded from a real loop device
// (losetup, then losetup -d): two changes on attach, a change with
// DISK_MEDIA_CHANGE=1 on detach.
func TestWatcherLoopRecording(t *testing.T) {
	msgs := usbtest.MustRecording(t, "testdata/loop-attach-detach.uevents")
	if len(msgs) != 3 {
		t.Fatalf("got %d recorded messages; want 3", len(msgs))
	}
	h := startWatcher(t)
	h.expect(scanAll...)
	h.setSize("loop0", "32768")
	go h.send(msgs[:2]...)
	evs := h.expect("added loop0 (change)", "changed loop0 (change)")
	if evs[0].Size != 32768*512 || evs[0].MediaChange {
		t.Errorf("got size %d, media change %v; want %d, false", evs[0].Size, evs[0].MediaChange, 32768*512)
	}
	h.setSize("loop0", "0")
	go h.send(msgs[2])
	ev := h.expect("removed loop0 (change)")[0]
	if !ev.MediaChange || ev.Size != 0 {
		t.Errorf("got media change %v, size %d; want true, 0", ev.MediaChange, ev.Size)
	}
}

func TestWatcherSkipsMalformedAndOtherSubsystems(t *testing.T) {
	h := startWatcher(t, "sdb", "sdb1")
	h.expect(without(scanAll, "sdb")...)
	h.plug("sdb")
	h.plug("sdb1")
	go h.send([]byte("garbage"), make([]byte, usb.MaxMessage+10), []byte("add@/x\x00ACTION=add\x00"), nil)
	go h.send(usbtest.MustRecording(t, "testdata/usb-stick-add.uevents")...)
	h.expect("added sdb (add)", "added sdb1 (add)")
}

func TestWatcherCancelReturnsPromptly(t *testing.T) {
	h := startWatcher(t)
	h.expect(scanAll...)
	h.cancel()
	select {
	case err := <-h.done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v; want context.Canceled", err)
		}
		h.done <- err
	case <-time.After(testenv.Patience(t)):
		t.Fatal("Run did not return after cancel")
	}
}
