package main

import (
	"context"
	"fmt"
	"math"
	"strconv"

	"github.com/clinicbox/clinicbox/appliance/offsite/offsitebench"
)

// nightSeconds is the night of the offsite week, 19:00 to 07:00: the time
// a night's upload has.
const nightSeconds = 12 * 3600

// offsiteWeek runs appliance/offsite's TestOffsiteWeekBenchmark (a Go test
// for the same reason as offsite) and reports the week it measured.
func (b *bench) offsiteWeek(ctx context.Context) *section {
	s := &section{title: "Offsite: a clinic week through the spool, 128 kbit/s by day and 10 Mbit/s by night, restored from the vault", ref: "-", measure: "measure",
		about: fmt.Sprintf("`go test -run TestOffsiteWeekBenchmark ./appliance/offsite`: the clinic dataset (%d MB asked; pgcluster's ClinicDataInit) on PostgreSQL 15 with fsync on, "+
			"an in-process tailnet with a vault in the test process, and the box (its own tailnet node, shipper and spool, the /perm side) in a process of its own, the test binary started again, so that its peak RSS (VmHWM) and CPU seconds (user and system, the whole week) are the box's alone. "+
			"Each simulated day records its visits (ClinicDataVisits, as fast as the server takes them), runs the maintenance window on day 3 (vacuum, reindex of the encounters, report table dropped and recreated), "+
			"takes a base backup onto the day's drive (two, swapped daily) and sends it offsite: day 0 whole over the unshaped tailnet (the seeding), then, after a box restart with the base-upload caps at three quarters of the link, "+
			"incrementals over a box uplink shaped in process by a token bucket on the tailnet connection (golang.org/x/time/rate, 1500-byte bursts): 128 kbit/s in office hours (07:00 to 19:00 on the box's clock, cap 96 kbit/s) and 10 Mbit/s at night (cap 7.5 Mbit/s). "+
			"Before each upload the day's WAL, written at once by the compressed day, drains to the vault over the night link (timed on its own). Each upload then starts in office hours: while it is built and the first 512 KiB cross the tailnet connection (both ways, WAL included) over the day link, the WAL lag below is that of the 128 kbit/s link (an upload running into office hours, the case the 10 s target is about); then the box's clock turns on to 19:00, the link to 10 Mbit/s, and the rest goes at night. "+
			"While the upload runs a probe commits every 100 ms and is timed to the vault's acknowledgement (commit to durable; a probe still unacknowledged when the upload ends counts with its age), each probe counted on the link of the moment it committed. "+
			"After the last day the box's repository is restored from the vault as `clinicctl restore --vault` does (mirrored over the tailnet by a restore machine's node, verified, restored with `clinicctl wal-fetch` as restore_command, recovered on PostgreSQL 15) to a time recorded halfway through the last day's visits, and every row of the clinic's tables and the probes is digested (per table the row count and the sum of the first 64 bits of each row's md5) on the restored server and on the source at that time. "+
			"Time is compressed: a day lasts its visits and its upload, so the box's CPU seconds are those of the whole week's work in less time.", b.cfg.weekMB)}
	b.logf("offsite-week: running TestOffsiteWeekBenchmark (%d MB)", b.cfg.weekMB)
	var w offsitebench.Week
	if s.err = b.offsiteTest(ctx, "TestOffsiteWeekBenchmark", "CLINICBOX_OFFSITE_WEEK", &w, "CLINICBOX_OFFSITE_WEEK_MB="+strconv.Itoa(b.cfg.weekMB)); s.err != nil {
		return s
	}
	s.rows, s.notes = weekRows(w)
	return s
}

// weekDays sums up the days: the largest incremental of an ordinary day
// and of the maintenance day as a share of the full, the largest of
// either in bytes, the longest upload after the seeding, the most /perm
// held, and a note per day.
type weekDays struct {
	full, ordinary, maint float64
	largest               int64
	longest               float64
	perm                  int64
	notes                 []string
}

func sumDays(days []offsitebench.Day) weekDays {
	s := weekDays{full: float64(max(days[0].Stored, 1))}
	for _, d := range days {
		share := float64(d.Stored) / s.full
		if d.Day > 0 {
			s.largest, s.longest = max(s.largest, d.Stored), max(s.longest, d.UploadSecs)
		}
		switch {
		case d.Day == 0:
		case d.Maintenance:
			s.maint = max(s.maint, share)
		default:
			s.ordinary = max(s.ordinary, share)
		}
		s.perm = max(s.perm, d.PeakSpool, d.SpoolBytes)
		s.notes = append(s.notes, fmt.Sprintf("day %d (%s%s): %d bytes stored (%.2f %% of the full), %d bytes on the wire in %.0f s, %.0f s of it at night (after %.0f s for the day's WAL to reach the vault), WAL lag p50 %.2f s, p99 %.2f s (night link p99 %.2f s); spool afterwards %d bytes (block map %d), at most %d while it ran.",
			d.Day, d.Kind, map[bool]string{true: ", maintenance night", false: ""}[d.Maintenance], d.Stored, 100*share, d.Wire, d.UploadSecs, d.NightSecs, d.DrainSecs, d.LagP50, d.LagP99, d.NightLagP99, d.SpoolBytes, d.BlockMap, d.PeakSpool))
	}
	return s
}

// weekRows are the week's rows, and a note per day.
func weekRows(w offsitebench.Week) ([]row, []string) {
	nan := math.NaN()
	if len(w.Days) == 0 {
		return nil, []string{"no day was measured"}
	}
	s := sumDays(w.Days)
	r := w.Restore
	matched := 0.0
	if r.Match {
		matched = 1
	}
	notes := append(s.notes, fmt.Sprintf("restore to %s: %d rows, digest %s restored, %s at the source; the vault held %d bytes of the box's repository.", r.Target, r.Rows, r.RestoredDigest, r.SourceDigest, r.VaultBytes))
	return []row{
		values(fmt.Sprintf("database size after loading (MB, %d visits a day)", w.VisitsPerDay), "%.0f", w.DatabaseMB, nan),
		values("full base backup stored (MB)", "%.1f", s.full/1e6, nan),
		atMost("largest ordinary day's incremental / full (%)", "%.2f", 100*s.ordinary, nan, 5, "%"),
		values("maintenance day's incremental / full (%)", "%.2f", 100*s.maint, nan),
		atMost("longest upload after the seeding, its day-link part included (s; a night is 12 h)", "%.0f", s.longest, nan, nightSeconds, "s"),
		values("largest incremental at the day cap of 96 kbit/s throughout (h, computed)", "%.2f", float64(s.largest)*8/math.Max(1, float64(w.CapBitsPerSecond))/3600, nan),
		values("WAL lag p50 while base uploads run (s)", "%.2f", w.LagP50, nan),
		values("WAL lag p99 while base uploads run, the seeding included (s)", "%.2f", w.LagP99, nan),
		atMost("WAL lag p99 while base uploads run on the 128 kbit/s day link (s)", "%.2f", w.ShapedLagP99, nan, 10, "s"),
		values("WAL lag p99 while base uploads run on the 10 Mbit/s night link (s)", "%.2f", w.NightLagP99, nan),
		atMost("peak RSS of the box process (MiB; its tailnet node, shipper and spool)", "%.1f", w.BoxPeakRSSMiB, nan, 64, "MiB"),
		values("CPU seconds of the box process over the week (user + system)", "%.1f", w.BoxCPUSeconds, nan),
		values("peak RSS of the test process (MiB; vault, its tailnet node, the test)", "%.0f", w.PeakRSSMiB, nan),
		values("most /perm's spool held (MB)", "%.2f", float64(s.perm)/1e6, nan),
		values("restore from the vault to a time of the last day: mirror, verify, restore, recover (s)", "%.0f", r.Seconds, nan),
		atLeast("restored rows match the source at that time (1 yes, 0 no)", "%.0f", matched, 1, ""),
		values("whole run (s)", "%.0f", w.Seconds, nan),
	}, notes
}
