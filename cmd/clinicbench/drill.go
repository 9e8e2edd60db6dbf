package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/restore"
	"github.com/clinicbox/clinicbox/drivers/fscrypt"
)

// drillRun is one restore drill: its process and its report.
type drillRun struct {
	m   measure
	rep restore.Report
}

// drill compares a restore drill in the box's scratch (an ext4 directory
// the kernel encrypts with a key that lives only in the kernel, as on the
// drive of a Pi) with clinicctl drill in the temporary directory of a PC,
// on the clinic dataset.
func (b *bench) drill(ctx context.Context) *section {
	s := &section{title: "Restore drill, clinic dataset", ours: "box's scratch", ref: "clinicctl drill on a PC",
		about: "`clinicctl drill --repo R --identity K` of a `clinicctl backup --compress server-zstd` of the cluster holding the clinic dataset: " +
			"restore to latest, a private PostgreSQL until recovery ends, amcheck over every table and index, the signed report. " +
			"The box's scratch is a directory that drivers/fscrypt encrypts (ext4 with the encrypt feature on a loop device, as the Pi drills on its drive); " +
			"the PC's is the temporary directory on the same disk. The box runs the same restore.Drill in its own process: the drilling program's " +
			"peak below is clinicctl's, not the box's (the box's own is in each of its reports). Time to a verified database is the whole command's wall time. " +
			"The order alternates; " + quietNote + "."}
	if err := b.loadClinic(ctx); err != nil {
		s.err = err
		return s
	}
	repo := b.fresh("drill-repo")
	if _, _, err := b.clinicctl(ctx, "backup", "--db", b.pg.URL(), "--repo", repo, "--recipient", b.recip, "--compress", "server-zstd"); err != nil {
		s.err = err
		return s
	}
	defer os.RemoveAll(repo)
	enc, done, err := b.encryptedScratch(ctx, repo)
	if err != nil {
		s.err = err
		return s
	}
	defer done()
	var ours, ref []drillRun
	s.err = b.alternate(ctx, "drill",
		func(int) error { r, err := b.drillIn(ctx, repo, enc); ours = append(ours, r); return err },
		func(int) error { r, err := b.drillIn(ctx, repo, b.tmp); ref = append(ref, r); return err })
	if s.err != nil {
		return s
	}
	s.rows = drillRows(ours, ref)
	return s
}

func drillRows(ours, ref []drillRun) []row {
	wall := func(r drillRun) float64 { return r.m.Wall.Seconds() }
	rto := func(r drillRun) float64 { return r.rep.RTO }
	pg := func(r drillRun) float64 { return float64(r.rep.ServerPeakRSS) / (1 << 20) }
	prog := func(r drillRun) float64 { return float64(r.m.MaxRSSKiB) / 1024 }
	return []row{
		values("time to a verified database (s)", "%.1f", medianOf(ours, wall), medianOf(ref, wall)),
		values("RTO in the signed report (s)", "%.1f", medianOf(ours, rto), medianOf(ref, rto)),
		values("PostgreSQL peak RSS, shared memory once (MiB)", "%.0f", medianOf(ours, pg), medianOf(ref, pg)),
		values("clinicctl drill peak RSS (MiB)", "%.1f", medianOf(ours, prog), medianOf(ref, prog)),
	}
}

// drillIn runs clinicctl drill with its scratch in dir and reads its
// report; a drill that does not pass is an error.
func (b *bench) drillIn(ctx context.Context, repo, dir string) (drillRun, error) {
	var r drillRun
	reports := b.fresh("drill-report")
	cmd := exec.CommandContext(ctx, b.ctl, "drill", "--repo", repo, "--identity", b.idFile, "--report", reports)
	cmd.Env = append(os.Environ(), "TMPDIR="+dir)
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
	raw, err := os.ReadFile(names[0])
	if err != nil {
		return r, err
	}
	return r, json.Unmarshal(raw, &r.rep)
}

// encryptedScratch mounts an ext4 file system with the encrypt feature,
// on a sparse image twice the size a restore of repo needs, and makes a
// directory in it that the kernel encrypts.
func (b *bench) encryptedScratch(ctx context.Context, repo string) (string, func(), error) {
	ids, err := archive.LoadIdentities(b.idFile)
	if err != nil {
		return "", nil, err
	}
	r, err := archive.Open(repo)
	if err != nil {
		return "", nil, err
	}
	if err := r.TrustRecorded(); err != nil { // the bench's own backup
		return "", nil, err
	}
	need, err := restore.SpaceNeeded(r, ids, restore.Target{})
	if err != nil {
		return "", nil, err
	}
	img, mnt := b.fresh("scratch.img"), b.fresh("scratch")
	size := fmt.Sprint(max(2*need, 256<<20))
	if err := runSteps(ctx, "encrypted scratch", [][]string{{"truncate", "-s", size, img}, {"mkfs.ext4", "-q", "-F", "-O", "encrypt", img}, {"mkdir", mnt}, {"mount", "-o", "loop", img, mnt}}); err != nil {
		os.Remove(img)
		return "", nil, err
	}
	d, err := fscrypt.New(mnt)
	unmount := func() { exec.Command("umount", mnt).Run(); os.Remove(mnt); os.Remove(img) }
	if err != nil {
		unmount()
		return "", nil, err
	}
	return d.Path, func() { d.Remove(); unmount() }, nil
}
