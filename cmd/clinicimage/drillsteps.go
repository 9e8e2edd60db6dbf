package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/clinicbox/clinicbox/appliance/status"
)

// noFscrypt is how the box's drill says that neither the drive's nor the
// box's file system can encrypt its scratch space: kernel.amd64, the
// virtual machine's kernel, is built without CONFIG_FS_ENCRYPTION (the
// Pi's kernel has it).
const noFscrypt = "the filesystem does not support encryption"

// drillOnBox waits for the box's own restore drill of the drive (a drive
// is drilled as soon as its first backup verified). It must pass, with the
// image's PostgreSQL, /bin/sh and clinicctl; in a guest whose kernel cannot
// encrypt the scratch space the box must refuse it, after finding the
// backup's PostgreSQL in the image, with the reason on the page and the
// panel's "drill failed". Any other outcome fails the smoke.
func drillOnBox(ctx context.Context, s *smoke) error {
	return s.pollStatus(ctx, func(st *status.Status) error {
		for _, d := range status.LatestDrills(st.Drills) {
			if d.Drive != s.drive.id {
				continue
			}
			why := strings.Join(d.Problems, "; ")
			switch {
			case d.OK:
				s.drive.drillReport = d.Report
				fmt.Fprintf(s.out, "smoke: the box's drill passed: RTO %.0f s, RPO %.0f s, report %s\n", d.RTO, d.RPO, d.Report)
				return nil
			case strings.Contains(why, noFscrypt) && slices.ContainsFunc(st.Conditions, func(c status.Condition) bool { return c.Name == "drill failed" && c.Drive == s.drive.id }):
				fmt.Fprintf(s.out, "smoke: NOT A PASSING DRILL: the guest's kernel cannot encrypt scratch space; the box found its PostgreSQL and refused the drill, shown red: %s\n", why)
				return nil
			}
			return failNowf("the box's drill of %s failed: %s", s.drive.id, why)
		}
		return fmt.Errorf("no drill of %s yet (%q)", s.drive.id, st.Headline)
	})
}

// drillReportOnDrive checks that the unplugged drive holds the drill's
// signed report in its repository's drills/.
func drillReportOnDrive(ctx context.Context, s *smoke) error {
	if s.drive.drillReport == "" {
		fmt.Fprintln(s.out, "smoke: no drill passed on the box (see above), so there is no report to look for")
		return nil
	}
	names, err := ext4List(ctx, s.drive.image, 0, "/"+repoDirOnDrive+"/drills")
	if err != nil {
		return err
	}
	for _, ext := range []string{".json", ".html"} {
		if !slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, s.drive.drillReport) && strings.HasSuffix(n, ext) }) {
			return fmt.Errorf("the drive's drills/ holds %q; want the report %s%s", names, s.drive.drillReport, ext)
		}
	}
	fmt.Fprintf(s.out, "smoke: the drill report %s is on the drive\n", s.drive.drillReport)
	return nil
}
