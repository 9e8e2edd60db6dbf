package smart

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func load(t *testing.T, name string) Report {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name+".data.bin"))
	if err != nil {
		t.Fatalf("%v (run go test -run TestFixturesMatchSpecLayouts -update)", err)
	}
	if strings.HasPrefix(name, "nvme") {
		r, err := FromNVMe(data)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	th, err := os.ReadFile(filepath.Join("testdata", name+".thresholds.bin"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := FromATA(data, th)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Verdicts from the fixture pages, with the reason staff will read.
func TestVerdicts(t *testing.T) {
	for _, tc := range []struct {
		fixture string
		want    Verdict
		reason  string
	}{
		{"ata-healthy", OK, ""},
		{"ata-reallocated", Warning, "12 sectors reallocated"},
		{"ata-pending", Warning, "3 sectors waiting"},
		{"ata-prefail", Failing, "failure threshold"},
		{"ata-hot", Warning, "61 °C"},
		{"ata-crc", OK, "cable or enclosure"},
		{"nvme-healthy", OK, ""},
		{"nvme-worn", Warning, "93% of its rated life"},
		{"nvme-critical", Failing, "reliability degraded"},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			r := load(t, tc.fixture)
			if r.Verdict != tc.want {
				t.Errorf("verdict %s (%v); want %s", r.Verdict, r.Reasons, tc.want)
			}
			if tc.reason != "" && !strings.Contains(strings.Join(r.Reasons, " "), tc.reason) {
				t.Errorf("reasons %q lack %q", r.Reasons, tc.reason)
			}
		})
	}
	if r := load(t, "ata-healthy"); r.PowerOnHours != 2950 || r.Temperature != 36 || len(r.Attributes) != 8 {
		t.Errorf("healthy ATA: %d hours, %d °C, %d attributes; want 2950, 36, 8", r.PowerOnHours, r.Temperature, len(r.Attributes))
	}
	if r := load(t, "nvme-critical"); r.MediaErrors != 17 || r.Temperature != 37 || r.PowerOnHours != 4321 {
		t.Errorf("NVMe: %+v", r)
	}
}

func TestRawMasking(t *testing.T) {
	// ID 9 packs minutes above the low 24 bits on some drives; ID 194
	// packs min and max temperatures above the low byte.
	if got := rawValue(9, [6]byte{0x10, 0x20, 0x00, 0x55, 0x01, 0}); got != 0x2010 {
		t.Errorf("power-on hours: got %#x", got)
	}
	if got := rawValue(194, [6]byte{36, 0, 20, 0, 50, 0}); got != 36 {
		t.Errorf("temperature: got %d", got)
	}
}

func TestBridgeAllowlist(t *testing.T) {
	probed := false
	c := &Checker{Read: func(string) (Report, error) { probed = true; return Report{Verdict: OK}, nil }}
	r := c.Check(context.Background(), "/dev/sda", "0bda:9210")
	if r.Verdict != Unknown || probed || !strings.Contains(r.Reasons[0], "0bda:9210") {
		t.Errorf("unknown bridge: %+v, probed %v; want unknown without probing", r, probed)
	}
	if r := c.Check(context.Background(), "/dev/sda", "152d:0578"); r.Verdict != OK || !probed {
		t.Errorf("allowed bridge: %+v; want it probed", r)
	}
}

func TestPanicBecomesUnknown(t *testing.T) {
	c := &Checker{Read: func(string) (Report, error) { panic("index out of range") }}
	r := c.Check(context.Background(), "/dev/sdb", "")
	if r.Verdict != Unknown || !strings.Contains(r.Reasons[0], "index out of range") {
		t.Errorf("got %+v; want unknown naming the failure", r)
	}
}

// A stuck call times out, and the device is not asked again until it is
// plugged in again.
func TestStuckDeviceTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var calls atomic.Int32
		c := &Checker{Timeout: 10 * time.Second, Read: func(string) (Report, error) {
			if calls.Add(1) == 1 {
				<-release // the first call hangs until the test lets go
			}
			return Report{Verdict: OK}, nil
		}}
		start := time.Now()
		r := c.Check(context.Background(), "/dev/sdc", "")
		if r.Verdict != Unknown || time.Since(start) != 10*time.Second {
			t.Errorf("got %+v after %v; want unknown after exactly 10s", r, time.Since(start))
		}
		if r := c.Check(context.Background(), "/dev/sdc", ""); r.Verdict != Unknown || calls.Load() != 1 {
			t.Errorf("second check: %+v, %d calls; want no new call", r, calls.Load())
		}
		close(release)
		synctest.Wait()
		c.Forget("/dev/sdc")
		if r := c.Check(context.Background(), "/dev/sdc", ""); r.Verdict != OK || calls.Load() != 2 {
			t.Errorf("after re-plug: %+v, %d calls; want a new check", r, calls.Load())
		}
	})
}
