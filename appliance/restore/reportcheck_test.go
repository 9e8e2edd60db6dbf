package restore

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/signer"
)

// writeReport signs a drill report with k and writes its files into dir,
// as a drill saves them in drills/.
func writeReport(t *testing.T, dir string, k *signer.Key, ok bool, started time.Time) *Report {
	t.Helper()
	rep := &Report{Started: started, Finished: started.Add(time.Minute), OK: ok, RTO: 42,
		BackupTime: started.Add(-time.Hour).In(time.FixedZone("CST", -6*3600)), Checks: []CheckResult{{Name: "postgres: amcheck", OK: ok}}}
	if !ok {
		rep.Failure = "a check failed"
	}
	if err := rep.Sign(k); err != nil {
		t.Fatal(err)
	}
	files, err := rep.Files()
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return rep
}

// The box's intact reports pass; a failed report turned into a pass (in
// its JSON, or only on its printable page), one signed by another key
// that claims the box's, and a file too large to be a report are each a
// problem; a report signed by another machine is set apart, not evidence.
func TestCheckReportsRejectsForgeries(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 12, 1, 21, 0, 0, 0, time.UTC)
	good := writeReport(t, dir, testSigner, true, start)
	failedJSON := writeReport(t, dir, testSigner, false, start.Add(time.Hour))
	failedPage := writeReport(t, dir, testSigner, false, start.Add(2*time.Hour))
	other := signer.FromSeed(bytes.Repeat([]byte{9}, 32))
	writeReport(t, dir, other, true, start.Add(3*time.Hour))
	claimed := writeReport(t, dir, other, true, start.Add(4*time.Hour))

	edit := func(name, from, to string) {
		p := filepath.Join(dir, name)
		b, _ := os.ReadFile(p)
		if !bytes.Contains(b, []byte(from)) {
			t.Fatalf("%s has no %q to edit", name, from)
		}
		os.WriteFile(p, bytes.Replace(b, []byte(from), []byte(to), 1), 0o600)
	}
	edit(failedJSON.Name()+".json", `"ok": false`, `"ok": true`)
	edit(failedPage.Name()+".html", "FAILED", "PASSED")
	edit(claimed.Name()+".json", other.Public().String(), testSigner.Public().String())
	os.WriteFile(filepath.Join(dir, "drill-29990101T000000Z.json"), bytes.Repeat([]byte(" "), maxReportBytes+1), 0o600)

	rc, err := CheckReports(dir, testSigner.Public())
	if err != nil {
		t.Fatal(err)
	}
	if len(rc.Boxed) != 1 || rc.Boxed[0].Name() != good.Name() {
		t.Errorf("reports accepted as the box's: %v; want only %s", rc.Boxed, good.Name())
	}
	if len(rc.Others) != 1 || !strings.Contains(rc.Others[0], other.Public().String()) {
		t.Errorf("others: %v; want the one signed by %s", rc.Others, other.Public())
	}
	var bad []string
	for _, p := range rc.Problems {
		bad = append(bad, p.Object)
	}
	want := []string{"drills/" + failedJSON.Name() + ".json", "drills/" + failedPage.Name() + ".json", "drills/" + claimed.Name() + ".json", "drills/drill-29990101T000000Z.json"}
	if strings.Join(bad, " ") != strings.Join(want, " ") {
		t.Errorf("problems: %v; want %v", rc.Problems, want)
	}
}
