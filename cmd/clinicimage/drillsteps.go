package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
)

// The box's log messages on where a drill's scratch is (drillScratch in
// appliance).
const (
	drillScratchEncrypted = "drill scratch encrypted by the kernel"
	drillScratchInMemory  = "drill scratch in memory"
)

// drillOnBox waits for the box's own restore drill of the drive (a drive
// is drilled as soon as its first backup verified). It must pass, with the
// image's PostgreSQL, /bin/sh and clinicctl: kernel.amd64 cannot encrypt a
// scratch on disk (no CONFIG_FS_ENCRYPTION), so the box restores into
// memory, the smoke's database being far below its budget. The Pi's
// kernel has fscrypt; the box loads the SHA-512 module its keys need. The
// box's log line on its choice of scratch is shown.
func drillOnBox(ctx context.Context, s *smoke) error { return drillInScratch(ctx, s, false) }

// drillEncryptedOnBox is drillOnBox where the kernel can encrypt (the
// Pi's): the drill must run in the encrypted scratch on /perm.
func drillEncryptedOnBox(ctx context.Context, s *smoke) error { return drillInScratch(ctx, s, true) }

// drillInScratch shows the box's log line on its choice of scratch, which
// must be the encrypted one when encrypted is set, and waits for the drill
// to pass.
func drillInScratch(ctx context.Context, s *smoke, encrypted bool) error {
	line, err := s.ui.WaitLog(ctx, clinicboxPath, "stdout", drillScratchEncrypted, drillScratchInMemory)
	if err != nil {
		return err
	}
	fmt.Fprintf(s.out, "smoke: clinicbox: %s\n", line)
	if encrypted && !strings.Contains(line, drillScratchEncrypted) {
		return failNowf("the box drilled in memory where the kernel can encrypt: %s", line)
	}
	return drillPassesOnBox(ctx, s, "")
}

// drillPassesOnBox waits for the box's drill of s.drive to pass; major,
// when not empty, is the PostgreSQL major version it must have run.
func drillPassesOnBox(ctx context.Context, s *smoke, major string) error {
	return s.pollStatus(ctx, func(st *status.Status) error {
		for _, d := range status.LatestDrills(st.Drills) {
			if d.Drive != s.drive.id {
				continue
			}
			if !d.OK {
				return failNowf("the box's drill of %s did not pass (not run: %v): %s", s.drive.id, d.NotRun, strings.Join(d.Problems, "; "))
			}
			if major != "" && !strings.HasPrefix(d.Server, major+".") {
				return failNowf("the box's drill of %s ran PostgreSQL %q; want %s", s.drive.id, d.Server, major)
			}
			s.drive.drillReport = d.Report
			fmt.Fprintf(s.out, "smoke: the box's drill passed on PostgreSQL %s (in memory: %v): RTO %.0f s, RPO %.0f s, peak RSS PostgreSQL %s, box %s, report %s\n",
				d.Server, d.InRAM, d.RTO, d.RPO, status.Bytes(d.ServerPeakRSS), status.Bytes(d.BoxPeakRSS), d.Report)
			return nil
		}
		return fmt.Errorf("no drill of %s yet (%q)", s.drive.id, st.Headline)
	})
}

// drillFailsOnBox makes the practice's own check fail (the host creates
// the table it forbids), waits until that change is on the drive, asks
// the box for a drill from its page, and waits for the failed drill: red,
// with the failing check named on the page's status.
func drillFailsOnBox(ctx context.Context, s *smoke) error {
	if err := s.db.Exec(ctx, "CREATE TABLE "+failDrillTable+" (why text)"); err != nil {
		return err
	}
	lsn, err := s.db.CurrentLSN(ctx, false)
	if err != nil {
		return err
	}
	if err := s.pollStatus(ctx, func(st *status.Status) error { return flushedPast(st, lsn) }); err != nil {
		return err
	}
	if err := s.poll(ctx, 2*time.Second, func() error { return s.box.Act(ctx, "drill", "") }); err != nil {
		return err
	}
	return s.pollStatus(ctx, func(st *status.Status) error {
		d, err := failedDrillShown(st, s.drive.id, failDrillTable, func(d status.Drill) bool {
			return d.Report != s.drive.drillReport && d.Report != ""
		})
		if err != nil {
			return err
		}
		s.drive.failedReport = d.Report
		fmt.Fprintf(s.out, "smoke: the box's drill failed as it should, red: %q\n", st.Headline)
		return nil
	})
}

// failedDrillShown checks that drive's latest drill is the one isNew
// accepts, that it failed with cause named in its problems, and that the
// status is red with the drill's own condition naming cause (not only
// some other red condition). It returns that drill.
func failedDrillShown(st *status.Status, drive, cause string, isNew func(status.Drill) bool) (status.Drill, error) {
	latest := status.LatestDrills(st.Drills)
	i := slices.IndexFunc(latest, func(d status.Drill) bool { return d.Drive == drive })
	if i < 0 || !isNew(latest[i]) {
		return status.Drill{}, fmt.Errorf("no new drill of %s yet (%q)", drive, st.Headline)
	}
	d := latest[i]
	why := strings.Join(d.Problems, "; ")
	if d.OK || d.NotRun || !strings.Contains(why, cause) {
		return d, failNowf("the drill of %s to %s: ok %v, not run %v, problems %q; want failed with %s named", drive, d.Target, d.OK, d.NotRun, why, cause)
	}
	red := slices.ContainsFunc(st.Conditions, func(c status.Condition) bool {
		return c.Name == "drill failed" && c.Drive == drive && c.Severity == status.Failure && strings.Contains(c.Message, cause)
	})
	if !red || st.Severity != status.Failure {
		return d, fmt.Errorf("the failed drill is not shown red yet: severity %v, conditions %+v", st.Severity, st.Conditions)
	}
	return d, nil
}

// drillReportOnDrive checks that the unplugged drive holds both drills'
// signed reports in its repository's drills/ (clinicctl verify, run by
// the step before, checked their signatures against the box's key), and
// that clinicctl verify rejects the failed drill's report turned into a
// pass.
func drillReportOnDrive(ctx context.Context, s *smoke) error {
	names, err := ext4List(ctx, s.drive.image, 0, "/"+repoDirOnDrive+"/drills")
	if err != nil {
		return err
	}
	for _, r := range []string{s.drive.drillReport, s.drive.failedReport} {
		for _, ext := range []string{".json", ".html"} {
			if !slices.Contains(names, r+ext) {
				return fmt.Errorf("the drive's drills/ holds %q; want the report %s%s", names, r, ext)
			}
		}
	}
	forged := filepath.Join(s.drive.repo, "drills", s.drive.failedReport+".json")
	b, err := os.ReadFile(forged)
	if err != nil {
		return err
	}
	if err := os.WriteFile(forged, []byte(strings.Replace(string(b), `"ok": false`, `"ok": true`, 1)), 0o600); err != nil {
		return err
	}
	out, err := s.host.run(ctx, "verify", "--repo", s.drive.repo, "--identity", s.host.identity)
	if err == nil || !strings.Contains(err.Error(), "drills/"+s.drive.failedReport+".json") {
		return fmt.Errorf("clinicctl verify of the repository with a forged drill report: %v\n%s\nwant a problem naming it", err, out)
	}
	// Put it back for the steps after.
	if err := os.WriteFile(forged, b, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(s.out, "smoke: the drill reports %s and %s are on the drive; the failed one made to pass is refused\n", s.drive.drillReport, s.drive.failedReport)
	return nil
}
