package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/jackc/pglogrepl"
)

// backlog compares how fast each tool drains the same WAL backlog, written
// by pgbench.
func (b *bench) backlog(ctx context.Context) *section {
	return b.drain(ctx, drainSpec{title: "WAL backlog drain", anchor: "bench_backlog_anchor",
		about: fmt.Sprintf("About %d MB of WAL is written by pgbench while no streamer runs, held by a slot. ", b.cfg.walMB),
		generate: func(ctx context.Context) (pglogrepl.LSN, pglogrepl.LSN, error) {
			b.logf("writing a %d MB WAL backlog", b.cfg.walMB)
			return b.generateWAL(ctx, int64(b.cfg.walMB)<<20)
		}})
}

// drainSpec is one backlog to drain: how it is written and described.
type drainSpec struct {
	title, about, anchor string
	generate             func(context.Context) (from, to pglogrepl.LSN, err error)
}

// drain compares how fast each tool drains the same WAL backlog. An anchor
// slot is created before the backlog is written; each run copies it into
// one fresh slot per tool, so every run of both tools starts at the same
// position with an empty destination and stops at the same end. Then
// clinicctl drains it again with zstd alone, for the drive space that
// adaptive compression costs.
func (b *bench) drain(ctx context.Context, d drainSpec) *section {
	s := &section{title: d.title, ref: "pg_receivewal",
		about: d.about + "Then `pg_receivewal -D DIR --slot S --endpos LSN` and `clinicctl stream --repo DIR --slot S2 --endpos LSN` each drain it " +
			"from the same start into an empty destination (fresh copies of one slot for every run; the order alternates; " + quietNote + "). " +
			"pg_receivewal runs with its defaults (no compression, fsync at each segment's end); clinicctl compresses adaptively " +
			"(S2 while more than 4 MB behind the server, raw frames when S2 falls behind the socket, zstd once caught up) and encrypts with age. " +
			"Last, `clinicctl stream --compress zstd` drains the same backlog once per run with zstd alone."}
	var created bool
	if err := b.scalar(ctx, "SELECT pg_create_physical_replication_slot($1, true) IS NOT NULL", &created, d.anchor); err != nil {
		s.err = err
		return s
	}
	defer b.dropSlot(context.Background(), d.anchor)
	from, to, err := d.generate(ctx)
	if err != nil {
		s.err = err
		return s
	}
	walMB := float64(to-from) / 1e6
	b.walNotes = append(b.walNotes, fmt.Sprintf("%s: %.0f MB of WAL (%s to %s)", d.title, walMB, from, to))
	var ours, ref, zstdOnly series
	var oursWAL, refWAL []string // the segments each run stored
	s.err = b.alternate(ctx, d.title,
		func(run int) error {
			m, segs, err := b.drainClinicctl(ctx, d.anchor, run, to, b.tmp)
			ours, oursWAL = append(ours, m), append(oursWAL, segs)
			return err
		},
		func(run int) error {
			m, segs, err := b.drainReceivewal(ctx, d.anchor, run, to, b.pgwork)
			ref, refWAL = append(ref, m), append(refWAL, segs)
			return err
		})
	for run := 0; s.err == nil && run < b.cfg.runs; run++ {
		b.quiet(ctx)
		var m measure
		m, _, s.err = b.drainClinicctl(ctx, d.anchor, run, to, b.tmp, "--compress", "zstd")
		zstdOnly = append(zstdOnly, m)
	}
	if s.err != nil {
		return s
	}
	s.notes = append(s.notes, sameSegments(oursWAL, refWAL))
	if b.drive != nil {
		rows, note, err := b.drainOnDrive(ctx, d, to)
		if err != nil {
			s.err = err
			return s
		}
		defer func() { s.rows, s.notes = append(s.rows, rows...), append(s.notes, note) }()
	}
	s.rows = []row{
		ratioAtMost("wall time (s)", "%.2f", ours.wall(), ref.wall(), 0.5, " (2x faster)"),
		values("throughput (MB/s of WAL)", "%.0f", walMB/ours.wall(), walMB/ref.wall()),
		values("CPU user+sys (s)", "%.2f", ours.cpu(), ref.cpu()),
		values("CPU user+sys per MB of WAL (ms)", "%.2f", 1000*ours.cpu()/walMB, 1000*ref.cpu()/walMB),
		values("bytes written (MB)", "%.1f", ours.mb(), ref.mb()),
		values("server CPU meanwhile (s)", "%.2f", ours.server(), ref.server()),
		atMost("peak RSS (MiB)", "%.1f", ours.rss(), ref.rss(), 64, "MiB"),
		values("zstd alone: wall time (s)", "%.2f", zstdOnly.wall(), ref.wall()),
		values("zstd alone: CPU user+sys (s)", "%.2f", zstdOnly.cpu(), ref.cpu()),
		values("zstd alone: bytes written (MB)", "%.1f", zstdOnly.mb(), ref.mb()),
	}
	s.notes = append(s.notes, fmt.Sprintf("wall times of the runs: clinicctl %s; pg_receivewal %s; clinicctl with zstd alone %s", walls(ours), walls(ref), walls(zstdOnly)),
		fmt.Sprintf("CPU user+sys of the runs: clinicctl %s; pg_receivewal %s", cpus(ours), cpus(ref)),
		fmt.Sprintf("drive space: this WAL (%.0f MB) takes %.1f MB drained adaptively after an outage (the most it can take: a caught-up box stores zstd) "+
			"and %.1f MB with zstd alone (%.2fx); recompressing the adaptive frames to zstd when idle would save %.1f MB for about %.2f s of CPU "+
			"(the zstd drain's CPU less the adaptive one's)", walMB, ours.mb(), zstdOnly.mb(), ours.mb()/zstdOnly.mb(), ours.mb()-zstdOnly.mb(), zstdOnly.cpu()-ours.cpu()),
		cpuFloor(ours, ref.wall()*0.5, b.machine.Cores))
	return s
}

// cpuFloor says how fast the drain could be at best on this machine: the
// CPU that clinicctl and the walsender feeding it need, spread over every
// core, against the target's wall time.
func cpuFloor(ours series, target float64, cores int) string {
	need := ours.cpu() + ours.server()
	floor := need / float64(max(cores, 1))
	verdict := "within reach"
	if floor > target {
		verdict = "out of reach on this machine without spending less CPU per byte"
	}
	return fmt.Sprintf("CPU arithmetic: clinicctl (receive, compress, age, write) %.2f s + walsender %.2f s = %.2f s of CPU; "+
		"on %d cores that takes at least %.2f s of wall time, against a target of %.2f s (half of pg_receivewal's median): %s",
		ours.cpu(), ours.server(), need, cores, floor, target, verdict)
}

// drainClinicctl drains the backlog with clinicctl stream and says which
// segments it stored.
func (b *bench) drainClinicctl(ctx context.Context, anchor string, run int, end pglogrepl.LSN, at string, extra ...string) (measure, string, error) {
	slot := fmt.Sprintf("bench_backlog_cc_%d", run)
	if err := b.copySlot(ctx, anchor, slot); err != nil {
		return measure{}, "", err
	}
	defer b.dropSlot(context.Background(), slot)
	repo := filepath.Join(at, "backlog-repo")
	os.RemoveAll(repo)
	defer b.discard(ctx, repo)
	server := b.serverCPU()
	args := []string{"stream", "--db", b.pg.URL(), "--repo", repo, "--slot", slot, "--recipient", b.recip, "--endpos", end.String()}
	m, _, err := b.clinicctl(ctx, append(args, extra...)...)
	if err != nil {
		return m, "", err
	}
	m.Server = b.serverCPU() - server
	if m.Bytes, err = dirBytes(repo); err != nil {
		return m, "", err
	}
	r, err := archive.Open(repo)
	if err != nil {
		return m, "", err
	}
	sum, err := r.Summarize()
	if err != nil {
		return m, "", err
	}
	if len(sum.WAL) != 1 {
		return m, "", fmt.Errorf("clinicctl stored %d runs of WAL segments, want one", len(sum.WAL))
	}
	return m, sum.WAL[0].First + ".." + sum.WAL[0].Last, nil
}

// drainReceivewal drains the backlog with pg_receivewal and says which
// segments it stored.
func (b *bench) drainReceivewal(ctx context.Context, anchor string, run int, end pglogrepl.LSN, at string) (measure, string, error) {
	slot := fmt.Sprintf("bench_backlog_rw_%d", run)
	if err := b.copySlot(ctx, anchor, slot); err != nil {
		return measure{}, "", err
	}
	defer b.dropSlot(context.Background(), slot)
	dir := filepath.Join(at, "backlog-wal")
	os.RemoveAll(dir)
	if err := b.srv.mkdir(dir, 0o700); err != nil {
		return measure{}, "", err
	}
	defer b.discard(ctx, dir)
	server := b.serverCPU()
	m, _, err := runTimed(b.receivewal(ctx, "-D", dir, "--slot", slot, "--endpos", end.String(), "--no-loop"))
	if err != nil {
		return m, "", err
	}
	m.Server = b.serverCPU() - server
	if m.Bytes, err = dirBytes(dir); err != nil {
		return m, "", err
	}
	segs, err := filepath.Glob(filepath.Join(dir, "0*"))
	if err != nil || len(segs) == 0 {
		return m, "", fmt.Errorf("pg_receivewal stored no segment in %s: %v", dir, err)
	}
	sort.Strings(segs)
	last := strings.TrimSuffix(filepath.Base(segs[len(segs)-1]), ".partial")
	return m, filepath.Base(segs[0]) + ".." + last, nil
}

// sameSegments says whether both tools stored the same segments in every
// run, which shows that they drained the same backlog from the same start.
func sameSegments(ours, ref []string) string {
	if len(ours) == 0 || len(ours) != len(ref) {
		return "MISMATCH: the runs are incomplete"
	}
	for i := range ours {
		if ours[i] != ref[i] {
			return fmt.Sprintf("MISMATCH: the tools stored different segments (clinicctl %v, pg_receivewal %v)", ours, ref)
		}
	}
	return fmt.Sprintf("both tools stored segments %s in every run (the last one partial)", ours[0])
}

// live runs both streamers side by side, each through its own slot, under
// a steady pgbench load, and compares the CPU they used.
func (b *bench) live(ctx context.Context) *section {
	s := &section{title: "Live streaming CPU", ref: "pg_receivewal",
		about: fmt.Sprintf("Both streamers run at the same time, each through its own new slot, while pgbench runs at %d transactions/s for %s; "+
			"then clinicctl gets SIGINT and pg_receivewal SIGTERM. CPU is user+sys of each process over the whole window. "+
			"A CHECKPOINT comes before the slots are created: a new physical slot starts at the last checkpoint's redo point, "+
			"so without it both tools would first drain all WAL written since then (up to max_wal_size, 1 GB here), "+
			"which is the backlog measurement above, not live streaming.", b.cfg.rate, b.cfg.liveFor)}
	var ours, ref series
	var walMB []float64
	for i := 0; i < b.cfg.runs; i++ {
		b.logf("live streaming run %d/%d (%s)", i+1, b.cfg.runs, b.cfg.liveFor)
		o, r, mb, err := b.liveRun(ctx, i)
		if err != nil {
			s.err = err
			return s
		}
		ours, ref, walMB = append(ours, o), append(ref, r), append(walMB, mb)
	}
	b.walNotes = append(b.walNotes, fmt.Sprintf("live streaming: %.0f MB of WAL per %s run (median)", median(walMB), b.cfg.liveFor))
	s.rows = []row{
		ratioAtMost("CPU user+sys (s)", "%.2f", ours.cpu(), ref.cpu(), 1.5, ""),
		values("window (s)", "%.1f", ours.wall(), ref.wall()),
		values("bytes written (MB)", "%.1f", ours.mb(), ref.mb()),
		atMost("peak RSS (MiB)", "%.1f", ours.rss(), ref.rss(), 64, "MiB"),
	}
	s.notes = append(s.notes, fmt.Sprintf("WAL streamed per run: %.0f MB (median)", median(walMB)))
	return s
}

func (b *bench) liveRun(ctx context.Context, run int) (ours, ref measure, walMB float64, err error) {
	ccSlot, rwSlot := fmt.Sprintf("bench_live_cc_%d", run), fmt.Sprintf("bench_live_rw_%d", run)
	repo := b.fresh("live-repo")
	defer os.RemoveAll(repo)
	dir := filepath.Join(b.pgwork, "live-wal")
	os.RemoveAll(dir)
	if err := b.srv.mkdir(dir, 0o700); err != nil {
		return ours, ref, 0, err
	}
	defer os.RemoveAll(dir)
	if err := b.pg.Exec(ctx, "CHECKPOINT"); err != nil {
		return ours, ref, 0, err
	}
	if _, _, err := runTimed(b.receivewal(ctx, "--create-slot", "--slot", rwSlot)); err != nil {
		return ours, ref, 0, err
	}
	defer b.dropSlot(context.Background(), rwSlot)
	defer b.dropSlot(context.Background(), ccSlot)
	rw, err := startChild(b.receivewal(ctx, "-D", dir, "--slot", rwSlot))
	if err != nil {
		return ours, ref, 0, err
	}
	defer rw.kill()
	cc, err := startChild(exec.CommandContext(ctx, b.ctl, "stream", "--db", b.pg.URL(), "--repo", repo, "--slot", ccSlot, "--recipient", b.recip))
	if err != nil {
		return ours, ref, 0, err
	}
	defer cc.kill()
	if err := b.waitActive(ctx, ccSlot, rwSlot); err != nil {
		return ours, ref, 0, err
	}
	from, err := b.currentLSN(ctx)
	if err != nil {
		return ours, ref, 0, err
	}
	secs := int(math.Ceil(b.cfg.liveFor.Seconds()))
	if err := b.pg.Pgbench(ctx, "-c", "2", "-j", "1", "-R", fmt.Sprint(b.cfg.rate), "-T", fmt.Sprint(secs)); err != nil {
		return ours, ref, 0, err
	}
	to, err := b.currentLSN(ctx)
	if err != nil {
		return ours, ref, 0, err
	}
	cc.signal(syscall.SIGINT)
	rw.signal(syscall.SIGTERM)
	ours, err = cc.stop(syscall.SIGINT)
	b.record("stream", ours)
	if err != nil {
		return ours, ref, 0, err
	}
	if ref, err = rw.stop(syscall.SIGTERM); err != nil {
		return ours, ref, 0, err
	}
	if ours.Bytes, err = dirBytes(repo); err != nil {
		return ours, ref, 0, err
	}
	if ref.Bytes, err = dirBytes(dir); err != nil {
		return ours, ref, 0, err
	}
	return ours, ref, float64(to-from) / 1e6, nil
}

// drainOnDrive drains the backlog again with both tools, each into a
// destination on the slow drive, as the box writes to its USB drive. Bytes
// written are what reached the device, counted by the kernel, after a sync.
func (b *bench) drainOnDrive(ctx context.Context, d drainSpec, to pglogrepl.LSN) ([]row, string, error) {
	var ours, ref series
	var oursWAL, refWAL []string
	err := b.alternate(ctx, d.title+fmt.Sprintf(" onto a %d MB/s drive", b.cfg.driveMBps),
		func(run int) error {
			m, segs, err := b.onDrive(ctx, func() (measure, string, error) { return b.drainClinicctl(ctx, d.anchor, run, to, b.drive.Dir) })
			ours, oursWAL = append(ours, m), append(oursWAL, segs)
			return err
		},
		func(run int) error {
			m, segs, err := b.onDrive(ctx, func() (measure, string, error) { return b.drainReceivewal(ctx, d.anchor, run, to, b.drive.Dir) })
			ref, refWAL = append(ref, m), append(refWAL, segs)
			return err
		})
	if err != nil {
		return nil, "", err
	}
	zstdOnly, err := b.zstdOnDrive(ctx, d, to)
	if err != nil {
		return nil, "", err
	}
	at := fmt.Sprintf("on a %d MB/s drive: ", b.cfg.driveMBps)
	rows := []row{
		ratioAtMost(at+"wall time (s)", "%.2f", ours.wall(), ref.wall(), 0.5, " (2x faster)"),
		values(at+"CPU user+sys (s)", "%.2f", ours.cpu(), ref.cpu()),
		values(at+"bytes written to the device (MB)", "%.1f", ours.mb(), ref.mb()),
		values(at+"zstd alone: wall time (s)", "%.2f", zstdOnly.wall(), ref.wall()),
		values(at+"zstd alone: CPU user+sys (s)", "%.2f", zstdOnly.cpu(), ref.cpu()),
		values(at+"zstd alone: bytes written to the device (MB)", "%.1f", zstdOnly.mb(), ref.mb()),
	}
	note := fmt.Sprintf("%sthe destinations are on ext4 on a loop device whose writes the kernel holds to %d MB/s (a USB-2 drive; cgroup block I/O throttle); "+
		"wall times of the runs: clinicctl %s; pg_receivewal %s; clinicctl with zstd alone %s; %s", at, b.cfg.driveMBps, walls(ours), walls(ref), walls(zstdOnly), sameSegments(oursWAL, refWAL))
	return rows, note, nil
}

// zstdOnDrive drains the backlog onto the slow drive with zstd alone, once
// per run: where the drive is slower than zstd, its smaller output may
// drain faster than adaptive compression's.
func (b *bench) zstdOnDrive(ctx context.Context, d drainSpec, to pglogrepl.LSN) (series, error) {
	var out series
	for run := 0; run < b.cfg.runs; run++ {
		b.quiet(ctx)
		m, _, err := b.onDrive(ctx, func() (measure, string, error) {
			return b.drainClinicctl(ctx, d.anchor, run, to, b.drive.Dir, "--compress", "zstd")
		})
		out = append(out, m)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// onDrive runs one drain onto the slow drive and counts the bytes that
// reached the device (the drain syncs its destination before removing it,
// so that none is left in memory).
func (b *bench) onDrive(ctx context.Context, drain func() (measure, string, error)) (measure, string, error) {
	before, err := b.drive.Written()
	if err != nil {
		return measure{}, "", err
	}
	m, segs, err := drain()
	if err != nil {
		return m, segs, err
	}
	after, err := b.drive.Written()
	m.Bytes = after - before
	return m, segs, err
}

// discard removes a drain's destination once its files are synced, so that
// everything the tool wrote reaches the device and is counted on the slow
// drive; the sync comes after the run's measurement.
func (b *bench) discard(ctx context.Context, dir string) {
	exec.CommandContext(ctx, "sync").Run()
	os.RemoveAll(dir)
}
