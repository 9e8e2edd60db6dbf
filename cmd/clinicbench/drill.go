package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/clinicbox/clinicbox/appliance/restore"
)

// drillRun is one restore drill: its process and its report.
type drillRun struct {
	m   measure
	rep restore.Report
}

// drill compares the box's own restore drill (cmd/clinicbox in its own
// process, drilling the drive in it into a scratch directory the kernel
// encrypts, asked for on its page) with clinicctl drill in the temporary
// directory of a PC, on the same repository: the one the box wrote onto
// its drive from the cluster holding the clinic dataset.
func (b *bench) drill(ctx context.Context) *section {
	s := &section{title: "Restore drill, clinic dataset", ours: "the box (cmd/clinicbox)", ref: "clinicctl drill on a PC",
		about: "cmd/clinicbox, built as for the box, runs in a process of its own with one drive: an ext4 image with the encrypt feature on a loop device (`-loop-drives`), " +
			"enrolled on its page, so that the box takes its base backup of the cluster holding the clinic dataset onto it, verifies it and streams WAL. " +
			"Each of the box's runs is the Drill button of its page (`POST /api/actions/drill`): the box's own drill (appliance's drillDrive: restore to latest into a directory on the drive that drivers/fscrypt encrypts, " +
			"a private PostgreSQL until recovery ends, amcheck over every table and index, the signed report in its state). " +
			"Each of clinicctl's is `clinicctl drill --repo R --identity K` of the same repository on the drive, with its scratch in the temporary directory on the same disk. " +
			"Time to a verified database: for the box from the request until its status shows the drill (read every 0.25 s), for clinicctl the whole command; the RTO is each signed report's own. " +
			"Peak RSS of the drilling process is each report's: the process's own VmHWM, reset when the drill starts (so the box's is its whole process during the drill, streaming included, and never PostgreSQL's); " +
			"PostgreSQL's is the report's too: the postmaster and every process under it, restore_command's included, shared memory once, sampled every 0.5 s. " +
			"The box keeps running (streaming, idle) during clinicctl's runs. The order alternates; " + quietNote + "."}
	if err := b.loadClinic(ctx); err != nil {
		s.err = err
		return s
	}
	x, err := b.startBox(ctx)
	if err != nil {
		s.err = err
		return s
	}
	defer x.close(b)
	var ours, ref []drillRun
	s.err = b.alternate(ctx, "drill",
		func(int) error { r, err := x.drill(ctx); ours = append(ours, r); return err },
		func(int) error { r, err := b.drillIn(ctx, x.repo(), b.tmp); ref = append(ref, r); return err })
	s.notes = append(s.notes, boxDrillNotes(x)...)
	if s.err != nil {
		return s
	}
	s.rows = drillRows(ours, ref)
	s.notes = append(s.notes, "runs (time to a verified database / RTO): the box "+drillRuns(ours)+"; clinicctl "+drillRuns(ref))
	return s
}

// drillRuns lists each run's wall time and RTO.
func drillRuns(rs []drillRun) string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%.1f / %.1f s", r.m.Wall.Seconds(), r.rep.RTO))
	}
	return strings.Join(out, ", ")
}

// boxDrillNotes say where the box drilled and its peak before the drills.
func boxDrillNotes(x *boxService) []string {
	var notes []string
	for _, l := range strings.Split(readHead(x.log), "\n") {
		if strings.Contains(l, "drill scratch") {
			notes = append(notes, "the box's log: `"+strings.TrimSpace(l)+"`")
			break
		}
	}
	return append(notes, fmt.Sprintf("the box process's peak RSS before the drills, from its start through the enrollment, its base backup of the cluster onto the drive and the backup's verification (VmHWM): %s", x.setupPeak))
}

func drillRows(ours, ref []drillRun) []row {
	wall := func(r drillRun) float64 { return r.m.Wall.Seconds() }
	rto := func(r drillRun) float64 { return r.rep.RTO }
	pg := func(r drillRun) float64 { return float64(r.rep.ServerPeakRSS) / (1 << 20) }
	prog := func(r drillRun) float64 { return float64(r.rep.ProgramPeakRSS) / (1 << 20) }
	return []row{
		values("time to a verified database (s)", "%.1f", medianOf(ours, wall), medianOf(ref, wall)),
		values("RTO in the signed report (s)", "%.1f", medianOf(ours, rto), medianOf(ref, rto)),
		values("PostgreSQL peak RSS, shared memory once (MiB)", "%.0f", medianOf(ours, pg), medianOf(ref, pg)),
		values("drilling process peak RSS during the drill: the box / clinicctl (MiB)", "%.1f", medianOf(ours, prog), medianOf(ref, prog)),
	}
}

// drillIn runs clinicctl drill with its scratch in dir and reads its
// report; a drill that does not pass is an error. The box's signing key
// clinicctl trusts at first use is recorded in the bench's directory, not
// in the user's configuration.
func (b *bench) drillIn(ctx context.Context, repo, dir string) (drillRun, error) {
	var r drillRun
	reports := b.fresh("drill-report")
	cmd := exec.CommandContext(ctx, b.ctl, "drill", "--repo", repo, "--identity", b.idFile, "--report", reports)
	cmd.Env = append(os.Environ(), "TMPDIR="+dir, "CLINICBOX_TRUST_FILE="+filepath.Join(b.tmp, "trusted-boxes.json"))
	m, _, err := runTimed(cmd)
	b.record("drill", m)
	r.m = m
	if err != nil {
		return r, err
	}
	names, _ := filepath.Glob(filepath.Join(reports, "drill-*.json"))
	if len(names) != 1 {
		return r, fmt.Errorf("drill: want one report in %s; have %v", reports, names)
	}
	r.rep, err = readDrillReport(reports, strings.TrimSuffix(filepath.Base(names[0]), ".json"))
	return r, err
}
