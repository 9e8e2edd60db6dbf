package appliance

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/drive"
	"github.com/clinicbox/clinicbox/appliance/hardware"
	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/drivers/smart"
	"github.com/clinicbox/clinicbox/drivers/smart/smarttest"
	"github.com/clinicbox/clinicbox/rotation"
)

// healthByName scripts each simulated drive's SMART report through the
// real checker.
type healthByName struct {
	mu      sync.Mutex
	reports map[string]smart.Report
}

func (h *healthByName) Check(ctx context.Context, d drive.Drive) status.Health {
	h.mu.Lock()
	c := &smart.Checker{Read: smarttest.Reports(h.reports)}
	h.mu.Unlock()
	return hardware.SMARTHealth{Checker: c}.Check(ctx, onDisk{d, "sim/" + d.Name()})
}

// onDisk gives a simulated drive a disk for the SMART checker to ask.
type onDisk struct {
	drive.Drive
	disk string
}

func (d onDisk) Info() drive.Info {
	info := d.Drive.Info()
	info.Disk = d.disk
	return info
}

// A drive whose SMART check says failing is taken out of the rotation
// when it comes in: never written again, red on the panel, and a failing
// drive cannot be enrolled.
func TestFailingDriveIsRefused(t *testing.T) {
	h := &healthByName{reports: map[string]smart.Report{"sim/blue": {Verdict: smart.OK}, "sim/orange": {Verdict: smart.OK}, "sim/green": smarttest.Failing()}}
	r := newRig(t, time.Date(2026, 3, 2, 7, 0, 0, 0, mustLoc(t, "America/Chicago")), func(c *Config) { c.Health = h })
	r.enroll("blue")
	if err := r.a.Do(context.Background(), ActEject, "", "test"); err != nil {
		t.Fatal(err)
	}
	r.wait("safe to remove", func(st status.Status) bool { return st.InBox != nil && st.InBox.Activity == "safe to remove" })
	r.sim.Unplug("blue")
	r.wait("out", func(st status.Status) bool { return st.InBox == nil })

	// Orange, in the box, starts failing: the periodic check takes it out
	// of the rotation and stops writing to it.
	r.enroll("orange")
	h.mu.Lock()
	h.reports["sim/orange"] = smarttest.Failing()
	h.mu.Unlock()
	r.at(time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), 14, 0)
	st := r.wait("orange failing", func(st status.Status) bool { return st.InBox != nil && st.InBox.Activity == "not written" })
	if st.InBox.Writable || !hasCondition(st, string(rotation.DriveFailing)) {
		t.Errorf("a drive that started failing in the box: %+v %v", st.InBox, st.Conditions)
	}
	// Its SMART trend holds both checks, and survives a restart.
	trendOf := func(st status.Status) []status.HealthSample {
		for _, d := range st.Drives {
			if d.ID == st.InBox.Drive {
				return d.HealthTrend
			}
		}
		return nil
	}
	if tr := trendOf(st); len(tr) != 2 || tr[0].Verdict != "ok" || tr[1].Verdict != "failing" {
		t.Errorf("orange's trend %+v; want an ok check then a failing one", tr)
	}
	r.stop()
	a2, err := New(r.a.cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.a = a2
	r.start()
	st = r.wait("orange back after the restart", func(st status.Status) bool { return st.InBox != nil && st.InBox.Drive != "" })
	if tr := trendOf(st); len(tr) < 2 || tr[1].Verdict != "failing" {
		t.Errorf("after a restart orange's trend is %+v; want the two checks kept", tr)
	}
	r.sim.Unplug("orange")
	r.wait("out", func(st status.Status) bool { return st.InBox == nil })

	// A new drive that is already failing cannot be enrolled.
	r.sim.Plug("green")
	r.wait("green identified", func(st status.Status) bool {
		return st.InBox != nil && st.InBox.Decision == string(rotation.UnknownDrive)
	})
	if err := r.a.Do(context.Background(), ActEnroll, "", "test"); err == nil || !strings.Contains(err.Error(), "failing") {
		t.Errorf("enrolling a failing drive: got %v; want a refusal", err)
	}
	r.sim.Unplug("green")
	r.wait("out", func(st status.Status) bool { return st.InBox == nil })

	// Blue starts failing while offsite; it comes back.
	h.mu.Lock()
	h.reports["sim/blue"] = smarttest.Failing()
	h.mu.Unlock()
	r.sim.Plug("blue")
	st = r.wait("blue refused as failing", func(st status.Status) bool {
		return st.InBox != nil && st.InBox.Activity == "not written" && hasCondition(st, string(rotation.DriveFailing))
	})
	if st.InBox.Writable || st.Severity != status.Failure || st.Panel.Red != "fast" {
		t.Errorf("failing drive: writable %v, severity %v, panel %+v; want not written, red", st.InBox.Writable, st.Severity, st.Panel)
	}
	for _, d := range st.Drives {
		if d.Generation == "Son" && (d.Where != string(rotation.Failing) || d.Health.Verdict != "failing") {
			t.Errorf("Son: %+v; want failing", d)
		}
	}
}
