package main

import (
	"context"
	"fmt"
	"math"
	"strconv"

	"github.com/clinicbox/clinicbox/appliance/offsite/offsitebench"
)

// offsiteWeek runs appliance/offsite's TestOffsiteWeekBenchmark (a Go test
// for the same reason as offsite) and reports the week it measured.
func (b *bench) offsiteWeek(ctx context.Context) *section {
	s := &section{title: "Offsite: a clinic week through the spool at 128 kbit/s", ref: "-", measure: "measure",
		about: fmt.Sprintf("`go test -run TestOffsiteWeekBenchmark ./appliance/offsite`: the clinic dataset (%d MB asked; pgcluster's ClinicDataInit) on PostgreSQL 15 with fsync on, "+
			"an in-process tailnet with a vault in the test process, and the box (its own tailnet node, shipper and spool, the /perm side) in a process of its own, the test binary started again, so that its peak RSS (VmHWM) and CPU seconds (user and system, the whole week) are the box's alone. "+
			"Each simulated day records its visits (ClinicDataVisits, as fast as the server takes them), runs the maintenance window on day 3 (vacuum, reindex of the encounters, report table dropped and recreated), "+
			"takes a base backup onto the day's drive (two, swapped daily) and sends it offsite: day 0 whole over the unshaped tailnet (the seeding), then, after a box restart with the base-upload cap at three quarters of the link, "+
			"incrementals over a box uplink shaped in process to 128 kbit/s by a token bucket on the tailnet connection (golang.org/x/time/rate, 1500-byte bursts). "+
			"Before each upload the day's WAL, written at once by the compressed day, drains to the vault (timed on its own); then, while the upload runs, a probe commits every 100 ms and is timed to the vault's acknowledgement (commit to durable; a probe still unacknowledged when the upload ends counts with its age). "+
			"Time is compressed: a day lasts its visits and its upload, so the box's CPU seconds are those of the whole week's work in less time.", b.cfg.weekMB)}
	b.logf("offsite-week: running TestOffsiteWeekBenchmark (%d MB)", b.cfg.weekMB)
	var w offsitebench.Week
	if s.err = b.offsiteTest(ctx, "TestOffsiteWeekBenchmark", "CLINICBOX_OFFSITE_WEEK", &w, "CLINICBOX_OFFSITE_WEEK_MB="+strconv.Itoa(b.cfg.weekMB)); s.err != nil {
		return s
	}
	s.rows, s.notes = weekRows(w)
	return s
}

// weekRows are the week's rows, and a note per day.
func weekRows(w offsitebench.Week) ([]row, []string) {
	nan := math.NaN()
	if len(w.Days) == 0 {
		return nil, []string{"no day was measured"}
	}
	full := float64(max(w.Days[0].Stored, 1))
	var ordinary, maint float64
	var notes []string
	var perm int64
	for _, d := range w.Days {
		share := float64(d.Stored) / full
		switch {
		case d.Day == 0:
		case d.Maintenance:
			maint = max(maint, share)
		default:
			ordinary = max(ordinary, share)
		}
		perm = max(perm, d.PeakSpool, d.SpoolBytes)
		notes = append(notes, fmt.Sprintf("day %d (%s%s): %d bytes stored (%.2f %% of the full), %d bytes on the wire in %.0f s (after %.0f s for the day's WAL to reach the vault), WAL lag p50 %.2f s, p99 %.2f s; spool afterwards %d bytes (block map %d), at most %d while it ran.",
			d.Day, d.Kind, map[bool]string{true: ", maintenance night", false: ""}[d.Maintenance], d.Stored, 100*share, d.Wire, d.UploadSecs, d.DrainSecs, d.LagP50, d.LagP99, d.SpoolBytes, d.BlockMap, d.PeakSpool))
	}
	return []row{
		values(fmt.Sprintf("database size after loading (MB, %d visits a day)", w.VisitsPerDay), "%.0f", w.DatabaseMB, nan),
		values("full base backup stored (MB)", "%.1f", full/1e6, nan),
		atMost("largest ordinary day's incremental / full (%)", "%.2f", 100*ordinary, nan, 5, "%"),
		values("maintenance day's incremental / full (%)", "%.2f", 100*maint, nan),
		values("WAL lag p50 while base uploads run (s)", "%.2f", w.LagP50, nan),
		values("WAL lag p99 while base uploads run, the seeding included (s)", "%.2f", w.LagP99, nan),
		atMost("WAL lag p99 while base uploads run on the shaped link (s)", "%.2f", w.ShapedLagP99, nan, 10, "s"),
		atMost("peak RSS of the box process (MiB; its tailnet node, shipper and spool)", "%.1f", w.BoxPeakRSSMiB, nan, 64, "MiB"),
		values("CPU seconds of the box process over the week (user + system)", "%.1f", w.BoxCPUSeconds, nan),
		values("peak RSS of the test process (MiB; vault, its tailnet node, the test)", "%.0f", w.PeakRSSMiB, nan),
		values("most /perm's spool held (MB)", "%.2f", float64(perm)/1e6, nan),
		values("whole run (s)", "%.0f", w.Seconds, nan),
	}, notes
}
