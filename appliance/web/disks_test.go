package web_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/clinicbox/clinicbox/appliance/status"
)

// The page lists the box's own disks with what their health data says, and
// no such table when the box has surveyed none.
func TestPageListsDisks(t *testing.T) {
	e := newEnv(t)
	c := e.staff()
	if res := c.get("/"); res.code != http.StatusOK || strings.Contains(res.body, `id="disks"`) {
		t.Fatalf("before a survey: got %d, disks table %v; want 200 and none", res.code, strings.Contains(res.body, `id="disks"`))
	}
	e.box.Update(func(st *status.Status) {
		st.Disks = []status.Disk{
			{Name: "nvme0n1", Protocol: "nvme", Model: "QEMU NVMe Ctrl", Serial: "CBNVME01", Health: status.Health{Verdict: "ok", Temperature: 50}},
			{Name: "mmcblk0", Health: status.Health{Verdict: "unknown", Reasons: []string{"An SD card keeps no SMART health data."}}},
		}
	})
	res := c.get("/")
	for _, s := range []string{`id="disks"`, "nvme0n1 (nvme)", "QEMU NVMe Ctrl", "CBNVME01", "50 °C", `class="health-unknown"><td>mmcblk0</td>`, "An SD card keeps no SMART health data."} {
		if !strings.Contains(res.body, s) {
			t.Errorf("the page lacks %q", s)
		}
	}
}
