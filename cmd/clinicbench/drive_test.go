package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/drivers/testenv"
)

// TestUSBDriveIsSlow writes through the bench's slow drive and checks that
// the kernel held the writes to the limit: a drive that writes faster than
// the limit would make the drain measurements on it meaningless.
func TestUSBDriveIsSlow(t *testing.T) {
	testenv.NeedRoot(t)
	for _, c := range []string{"losetup", "mkfs.ext4", "mount", "umount", "truncate"} {
		testenv.NeedCommand(t, c)
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		testenv.Skip(t, "no /dev/loop-control")
	}
	const mbps, size = 8, 24 << 20
	d, err := openSlowDrive(context.Background(), t.TempDir(), 256, mbps)
	if errors.Is(err, errNoIOControl) {
		testenv.Skip(t, err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Error(err)
		}
	})
	before, err := d.Written()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	writeSynced(t, filepath.Join(d.Dir, "f"), size)
	took := time.Since(start)
	after, err := d.Written()
	if err != nil {
		t.Fatal(err)
	}
	if after-before < size {
		t.Fatalf("the device counted %d bytes written for a %d-byte file", after-before, size)
	}
	rate := float64(size) / took.Seconds() / 1e6
	t.Logf("%d MB written and synced in %s: %.1f MB/s through a %d MB/s limit", size>>20, took.Round(time.Millisecond), rate, mbps)
	// The first burst may pass before the throttle's budget runs out; half
	// again the limit is far below any disk this runs on unthrottled.
	if rate > 1.5*mbps {
		t.Fatalf("%.1f MB/s written through a drive limited to %d MB/s", rate, mbps)
	}
}

// writeSynced writes n bytes to a new file and syncs it, so that they reach
// the device.
func writeSynced(t *testing.T, path string, n int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	for written := 0; written < n; written += len(buf) {
		if _, err := f.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}
