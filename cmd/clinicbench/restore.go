package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/clinicbox/clinicbox/appliance/restore"
	"github.com/jackc/pglogrepl"
)

// restoreSource is one database backed up both ways, with the same WAL
// after it in a clinicctl repository and in a pg_receivewal directory.
type restoreSource struct {
	repo    string // clinicctl repository: a base backup and the WAL after it
	baseDir string // pg_basebackup -Ft output
	walDir  string // pg_receivewal output
	rows    int64  // pgbench_history rows committed before the WAL's end
	walMB   float64
}

// restoreRun is one restore to a ready database.
type restoreRun struct {
	total  time.Duration // from the first command until recovery has ended
	unpack measure       // clinicctl restore, or tar
	rows   int64
}

// restore compares the time to a usable database: clinicctl restore then
// pg_ctl start, versus unpacking pg_basebackup's tars and replaying the
// same WAL from pg_receivewal's directory with restore_command = cp.
func (b *bench) restore(ctx context.Context) *section {
	s := &section{title: "Restore to a ready database", ref: "tar + cp restore_command",
		about: fmt.Sprintf("A base backup is taken both ways, then pgbench writes about %d MB of WAL, which both streamers store. "+
			"Timed from the first command until the restored server accepts connections and `pg_is_in_recovery()` is false: "+
			"`clinicctl restore --latest` then `pg_ctl start`, versus `tar -xf base.tar.zst` and `pg_wal.tar`, recovery.signal with "+
			"`restore_command = 'cp DIR/%%f %%p'` over pg_receivewal's directory, then `pg_ctl start`. Both servers start the same way.", b.cfg.walMB)}
	if !b.hasRestore(ctx) {
		s.skip = "this clinicctl has no restore command (`clinicctl help` does not list it); the measurement waits for it."
		return s
	}
	src, err := b.prepareRestore(ctx)
	if err != nil {
		s.err = err
		return s
	}
	var ours, ref []restoreRun
	s.err = b.alternate(ctx, "restore",
		func(int) error { r, err := b.restoreClinicctl(ctx, src); ours = append(ours, r); return err },
		func(int) error { r, err := b.restoreReference(ctx, src); ref = append(ref, r); return err })
	if s.err != nil {
		return s
	}
	total := func(rs []restoreRun) float64 {
		return medianOf(rs, func(r restoreRun) float64 { return r.total.Seconds() })
	}
	unpack := func(rs []restoreRun) float64 {
		return medianOf(rs, func(r restoreRun) float64 { return r.unpack.Wall.Seconds() })
	}
	recovery := func(rs []restoreRun) float64 {
		return medianOf(rs, func(r restoreRun) float64 { return (r.total - r.unpack.Wall).Seconds() })
	}
	var ctlRuns series
	for _, r := range ours {
		ctlRuns = append(ctlRuns, r.unpack)
	}
	s.rows = []row{
		ratioAtMost("time to a ready database (s)", "%.1f", total(ours), total(ref), 1.2, ""),
		values("unpack: clinicctl restore / tar (s)", "%.1f", unpack(ours), unpack(ref)),
		values("start and WAL replay until ready (s)", "%.1f", recovery(ours), recovery(ref)),
		atMost("clinicctl restore peak RSS (MiB)", "%.1f", ctlRuns.rss(), nan, 64, "MiB"),
	}
	s.notes = append(s.notes, fmt.Sprintf("WAL replayed after the backups: %.0f MB", src.walMB), rowsNote(src.rows, ours, ref),
		"pg_receivewal's last segment, if left as .partial, is renamed to its full name before the runs, as PostgreSQL's documentation says to.")
	return s
}

func (b *bench) hasRestore(ctx context.Context) bool {
	out, _ := exec.CommandContext(ctx, b.ctl, "help").CombinedOutput()
	return strings.Contains(string(out), "clinicctl restore")
}

func (b *bench) prepareRestore(ctx context.Context) (*restoreSource, error) {
	b.logf("restore: taking both base backups and %d MB of WAL", b.cfg.walMB)
	src := &restoreSource{repo: b.fresh("restore-repo"), baseDir: filepath.Join(b.pgwork, "restore-base"), walDir: filepath.Join(b.pgwork, "restore-wal")}
	if err := b.srv.mkdir(src.walDir, 0o700); err != nil {
		return nil, err
	}
	const ccSlot, rwSlot = "bench_restore_cc", "bench_restore_rw"
	defer b.dropSlot(context.Background(), ccSlot)
	defer b.dropSlot(context.Background(), rwSlot)
	// Both slots exist before the backups, so each keeps all WAL from
	// before its backup's start to the end.
	now, err := b.currentLSN(ctx)
	if err != nil {
		return nil, err
	}
	if err := b.streamTo(ctx, src, ccSlot, rwSlot, now, true); err != nil {
		return nil, err
	}
	if _, _, err := b.clinicctl(ctx, "backup", "--db", b.pg.URL(), "--repo", src.repo, "--recipient", b.recip, "--compress", "server-zstd"); err != nil {
		return nil, err
	}
	if _, err := b.runPgBasebackup(ctx, src.baseDir); err != nil {
		return nil, err
	}
	from, _, err := b.generateWAL(ctx, int64(b.cfg.walMB)<<20)
	if err != nil {
		return nil, err
	}
	if err := b.scalar(ctx, "SELECT count(*) FROM pgbench_history", &src.rows); err != nil {
		return nil, err
	}
	// A segment switch makes every commit so far durable and ends the WAL
	// at a segment boundary.
	var sw string
	if err := b.scalar(ctx, "SELECT pg_switch_wal()::text", &sw); err != nil {
		return nil, err
	}
	end, err := b.currentLSN(ctx)
	if err != nil {
		return nil, err
	}
	src.walMB = float64(end-from) / 1e6
	b.walNotes = append(b.walNotes, fmt.Sprintf("restore: %.0f MB of WAL replayed after the base backups", src.walMB))
	if err := b.streamTo(ctx, src, ccSlot, rwSlot, end, false); err != nil {
		return nil, err
	}
	return src, completePartial(src.walDir)
}

// streamTo stores WAL up to end with both tools through their slots,
// creating the slots the first time.
func (b *bench) streamTo(ctx context.Context, src *restoreSource, ccSlot, rwSlot string, end pglogrepl.LSN, create bool) error {
	if create {
		if _, _, err := runTimed(b.receivewal(ctx, "--create-slot", "--slot", rwSlot)); err != nil {
			return err
		}
	}
	if _, _, err := b.clinicctl(ctx, "stream", "--db", b.pg.URL(), "--repo", src.repo, "--slot", ccSlot, "--recipient", b.recip, "--endpos", end.String()); err != nil {
		return err
	}
	_, _, err := runTimed(b.receivewal(ctx, "-D", src.walDir, "--slot", rwSlot, "--endpos", end.String(), "--no-loop"))
	return err
}

// completePartial renames pg_receivewal's .partial segment to its full
// name so that a cp restore_command finds it.
func completePartial(dir string) error {
	partial, err := filepath.Glob(filepath.Join(dir, "*.partial"))
	if err != nil {
		return err
	}
	for _, p := range partial {
		if err := os.Rename(p, strings.TrimSuffix(p, ".partial")); err != nil {
			return err
		}
	}
	return nil
}

func medianOf[T any](rs []T, f func(T) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	return median(v)
}

func rowsNote(want int64, ours, ref []restoreRun) string {
	got := func(rs []restoreRun) string {
		var s []string
		for _, r := range rs {
			s = append(s, fmt.Sprint(r.rows))
		}
		return strings.Join(s, ", ")
	}
	state := "every restore has them all"
	for _, r := range append(append([]restoreRun{}, ours...), ref...) {
		if r.rows != want {
			state = "MISMATCH: a restore does not hold exactly the source's rows"
		}
	}
	return fmt.Sprintf("pgbench_history rows: source %d; clinicctl restores %s; reference restores %s (%s)", want, got(ours), got(ref), state)
}

// startRestored starts a restored data directory, waits until recovery
// has ended, and fills in the time since start and the pgbench_history
// rows the database holds.
func (b *bench) startRestored(ctx context.Context, pgdata, sock string, start time.Time, r *restoreRun) error {
	srv, err := restore.StartServer(ctx, pgdata, sock, b.srv.uid, b.srv.gid)
	if err != nil {
		return err
	}
	defer srv.Stop()
	if err := srv.WaitRecovered(ctx); err != nil {
		return err
	}
	r.total = time.Since(start)
	conn, err := srv.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.QueryRow(ctx, "SELECT count(*) FROM pgbench_history").Scan(&r.rows)
}
