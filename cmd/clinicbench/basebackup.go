package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// baseBackup compares clinicctl backup with pg_basebackup on the pgbench
// database; the last repository feeds the verify measurement.
func (b *bench) baseBackup(ctx context.Context) *section {
	return b.baseBackupOf(ctx, "Base backup", true, func(mb float64) string {
		return fmt.Sprintf("pgbench's rows are mostly blank padding: the %.2f GB database compresses to about %.0f MB, "+
			"so these backups are bound by reading and checksumming on the server rather than by moving bytes; a clinic's real data compresses far less.",
			float64(b.dataBytes)/1e9, mb)
	})
}

// baseBackupOf compares clinicctl backup with pg_basebackup, both with
// zstd level 1 on the server, alternating which goes first; note describes
// the data given the MB clinicctl wrote.
func (b *bench) baseBackupOf(ctx context.Context, title string, keep bool, note func(mb float64) string) *section {
	s := &section{title: title, ref: "pg_basebackup",
		about: "`clinicctl backup --compress server-zstd` (server-side zstd level 1, then age encryption, WAL of the backup stored in the repository) " +
			"versus `pg_basebackup -Ft -X stream --compress=server-zstd:1 -c fast`, both over the same loopback TCP connection string. " +
			"Outputs are removed between runs; the order alternates; " + quietNote + ". Server-side CPU (the walsender compressing) is not counted for either."}
	var ours, ref series
	s.err = b.alternate(ctx, title,
		func(run int) error {
			m, err := b.ctlBackup(ctx, run, keep && run == b.cfg.runs-1)
			ours = append(ours, m)
			return err
		},
		func(int) error { m, err := b.pgBasebackup(ctx); ref = append(ref, m); return err })
	if s.err != nil {
		return s
	}
	s.rows = []row{
		ratioAtMost("wall time (s)", "%.1f", ours.wall(), ref.wall(), 1.0, ""),
		values("CPU user+sys (s)", "%.1f", ours.cpu(), ref.cpu()),
		values("bytes written (MB)", "%.1f", ours.mb(), ref.mb()),
		atMost("peak RSS (MiB)", "%.1f", ours.rss(), ref.rss(), 64, "MiB"),
	}
	s.notes = append(s.notes, fmt.Sprintf("wall times of the runs: clinicctl %s; pg_basebackup %s", walls(ours), walls(ref)), note(ours.mb()))
	return s
}

func (b *bench) ctlBackup(ctx context.Context, run int, keep bool) (measure, error) {
	repo := b.fresh(fmt.Sprintf("backup-repo-%d", run))
	m, _, err := b.clinicctl(ctx, "backup", "--db", b.pg.URL(), "--repo", repo, "--recipient", b.recip, "--compress", "server-zstd")
	if err != nil {
		return m, err
	}
	if m.Bytes, err = dirBytes(repo); err != nil {
		return m, err
	}
	if keep {
		b.backupRepo = repo
		return m, nil
	}
	return m, os.RemoveAll(repo)
}

func (b *bench) pgBasebackup(ctx context.Context) (measure, error) {
	dir := filepath.Join(b.pgwork, "basebackup")
	os.RemoveAll(dir)
	defer os.RemoveAll(dir)
	return b.runPgBasebackup(ctx, dir)
}

// runPgBasebackup writes a tar-format backup with its WAL into dir (which
// pg_basebackup creates as the server's user).
func (b *bench) runPgBasebackup(ctx context.Context, dir string) (measure, error) {
	cmd := b.pg.Command(ctx, "pg_basebackup", "-d", b.pg.URL(), "-D", dir, "-Ft", "-X", "stream",
		"--compress=server-zstd:1", "-c", "fast")
	m, _, err := runTimed(cmd)
	if err != nil {
		return m, err
	}
	m.Bytes, err = dirBytes(dir)
	return m, err
}

// alternate runs a side-by-side measurement b.cfg.runs times, swapping
// which tool goes first on every other run so that neither always finds
// the caches warmed by the other.
func (b *bench) alternate(ctx context.Context, what string, ours, ref func(run int) error) error {
	for i := 0; i < b.cfg.runs; i++ {
		b.logf("%s run %d/%d", what, i+1, b.cfg.runs)
		first, second := ours, ref
		if i%2 == 1 {
			first, second = ref, ours
		}
		b.quiet(ctx)
		if err := first(i); err != nil {
			return err
		}
		b.quiet(ctx)
		if err := second(i); err != nil {
			return err
		}
	}
	return nil
}

// quietNote says how the disk is quieted before each run.
const quietNote = "before each run the page cache is flushed with `sync` and the machine is left idle for 3 s, so that no tool finds the disk busy with the last one's writes"

// quiet flushes dirty pages and pauses before a run.
func (b *bench) quiet(ctx context.Context) {
	exec.CommandContext(ctx, "sync").Run()
	select {
	case <-ctx.Done():
	case <-time.After(3 * time.Second):
	}
}

func walls(s series) string {
	return perRun(s, func(m measure) time.Duration { return m.Wall })
}

// cpus lists the CPU time (user+sys) of each run.
func cpus(s series) string { return perRun(s, measure.CPU) }

// perRun lists one duration of each run, in seconds.
func perRun(s series, f func(measure) time.Duration) string {
	out := ""
	for i, m := range s {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%.2f", f(m).Seconds())
	}
	return out + " s"
}
