package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/restore"
	"github.com/clinicbox/clinicbox/appliance/status"
)

// TestDrillRowsTakeEachProcessOwnPeak checks that the drilling program's
// row is each report's own peak (the process alone), not the rusage of
// the command, which counts the largest of the children it waited for.
func TestDrillRowsTakeEachProcessOwnPeak(t *testing.T) {
	run := func(wall, rto float64, rusageMiB, ownMiB, pgMiB int64) drillRun {
		return drillRun{
			m:   measure{Wall: time.Duration(wall * float64(time.Second)), MaxRSSKiB: rusageMiB << 10},
			rep: restore.Report{RTO: rto, ProgramPeakRSS: ownMiB << 20, ServerPeakRSS: pgMiB << 20},
		}
	}
	box := []drillRun{run(30, 20, 400, 90, 200), run(32, 21, 400, 94, 210), run(34, 22, 400, 92, 190)}
	ctl := []drillRun{run(40, 25, 300, 40, 180), run(41, 26, 300, 44, 185), run(39, 24, 300, 42, 175)}
	rows := drillRows(box, ctl)
	want := map[string][2]float64{
		"time to a verified database (s)":                                       {32, 40},
		"RTO in the signed report (s)":                                          {21, 25},
		"PostgreSQL peak RSS, shared memory once (MiB)":                         {200, 180},
		"drilling process peak RSS during the drill: the box / clinicctl (MiB)": {92, 42},
	}
	if len(rows) != len(want) {
		t.Fatalf("got %d rows; want %d", len(rows), len(want))
	}
	for _, r := range rows {
		w, ok := want[r.name]
		if !ok {
			t.Errorf("unexpected row %q", r.name)
			continue
		}
		if r.ours != w[0] || r.ref != w[1] {
			t.Errorf("%s: got %v / %v; want %v / %v", r.name, r.ours, r.ref, w[0], w[1])
		}
	}
}

// TestReadDrillReport reads a report the box names and refuses names
// that would leave the report directory, and reports too large to be one.
func TestReadDrillReport(t *testing.T) {
	dir := t.TempDir()
	b, _ := json.Marshal(restore.Report{RTO: 12.5, ProgramPeakRSS: 3 << 20})
	if err := os.WriteFile(filepath.Join(dir, "drill-20261204T150000Z.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := readDrillReport(dir, "drill-20261204T150000Z")
	if err != nil || rep.RTO != 12.5 || rep.ProgramPeakRSS != 3<<20 {
		t.Errorf("got %+v, %v; want RTO 12.5 and the program's peak", rep, err)
	}
	outside := filepath.Join(filepath.Dir(dir), "drill-x.json")
	for _, name := range []string{"", "../drill-x", "drill-../../drill-x", "drill-a/../../drill-x", "/etc/drill-x", "report", `drill-a\b`} {
		if _, err := readDrillReport(dir, name); err == nil || !strings.Contains(err.Error(), "not a report's name") {
			t.Errorf("readDrillReport(%q): got %v; want the name refused (%s untouched)", name, err, outside)
		}
	}
	huge := append([]byte(`{"host": "`), make([]byte, 2<<20)...)
	for i := 10; i < len(huge); i++ {
		huge[i] = 'a'
	}
	if err := os.WriteFile(filepath.Join(dir, "drill-huge.json"), append(huge, `"}`...), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readDrillReport(dir, "drill-huge"); err == nil {
		t.Error("a 2 MB report was read; want it refused")
	}
}

// TestNewDrill picks the drive's first drill not measured yet.
func TestNewDrill(t *testing.T) {
	ds := []status.Drill{
		{Drive: "son", Report: "drill-1"},
		{Drive: "father", Report: "drill-2"},
		{Drive: "son"}, // not run: no report
		{Drive: "son", Report: "drill-3"},
	}
	for _, c := range []struct {
		seen []string
		want string
	}{{nil, "drill-1"}, {[]string{"drill-1"}, "drill-3"}, {[]string{"drill-1", "drill-3"}, ""}} {
		seen := map[string]bool{}
		for _, s := range c.seen {
			seen[s] = true
		}
		d, ok := newDrill(ds, "son", seen)
		if d.Report != c.want || ok != (c.want != "") {
			t.Errorf("seen %v: got %q, %v; want %q", c.seen, d.Report, ok, c.want)
		}
	}
}

// TestBoxLines reads the pages' address and the setup code the way the
// service prints them, the last of each (a restarted service prints them
// again).
func TestBoxLines(t *testing.T) {
	log := `time=2026-12-04T15:00:00Z level=INFO msg="pages on the practice's network" addr=127.0.0.1:40001
time=2026-12-04T15:00:01Z level=INFO msg=running database=postgres://x
time=2026-12-04T15:01:00Z level=INFO msg="pages on the practice's network" addr=127.0.0.1:40002
`
	if got := lastMatch(boxPagesLine, log); got != "127.0.0.1:40002" {
		t.Errorf("pages: got %q; want 127.0.0.1:40002", got)
	}
	console := "\r\nclinicbox: setup code for the box's page: ABCDE-12345\r\n\r\n"
	if got := lastMatch(boxSetupCode, console); got != "ABCDE-12345" {
		t.Errorf("setup code: got %q; want ABCDE-12345", got)
	}
	if got := lastMatch(boxPagesLine, "clinicbox: starting\n"); got != "" {
		t.Errorf("no pages line: got %q; want none", got)
	}
}

// TestDrillRuns lists every run's wall time and RTO, in order.
func TestDrillRuns(t *testing.T) {
	rs := []drillRun{
		{m: measure{Wall: 41800 * time.Millisecond}, rep: restore.Report{RTO: 35}},
		{m: measure{Wall: 24400 * time.Millisecond}, rep: restore.Report{RTO: 16.54}},
	}
	if got, want := drillRuns(rs), "41.8 / 35.0 s, 24.4 / 16.5 s"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}
