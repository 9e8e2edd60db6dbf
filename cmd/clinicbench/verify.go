package main

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// verify times clinicctl verify on the repository of the last base backup.
func (b *bench) verify(ctx context.Context) *section {
	s := &section{title: "Verification speed", ref: "(no reference tool)",
		about: "`clinicctl verify` on the repository holding the last base backup above (every archive decrypted, decompressed and checksummed, " +
			"plus the WAL the backup needs). Rates divide the bytes it reports by the whole process's wall time. " +
			"The target is judged on raw bytes (the backup's data as PostgreSQL wrote it); the rate over stored (compressed, encrypted) bytes is shown too."}
	if b.backupRepo == "" {
		s.skip = "no base backup repository (the base backup measurement failed)"
		return s
	}
	var runs series
	var stored, raw []float64
	for i := 0; i < b.cfg.runs; i++ {
		b.logf("verify run %d/%d", i+1, b.cfg.runs)
		m, out, err := b.clinicctl(ctx, "verify", "--repo", b.backupRepo, "--identity", b.idFile)
		if err != nil {
			s.err = err
			return s
		}
		st, rw, err := parseVerify(out)
		if err != nil {
			s.err = err
			return s
		}
		runs = append(runs, m)
		stored, raw = append(stored, st/m.Wall.Seconds()), append(raw, rw/m.Wall.Seconds())
		if i == 0 {
			s.notes = append(s.notes, fmt.Sprintf("clinicctl verify reported: %s", lastLine(out)))
		}
	}
	s.rows = []row{
		atLeast("MB/s of raw backup data", "%.0f", median(raw), 500, "MB/s"),
		values("MB/s of stored bytes", "%.0f", median(stored), nan),
		values("wall time (s)", "%.2f", runs.wall(), nan),
		values("CPU user+sys (s)", "%.2f", runs.cpu(), nan),
		atMost("peak RSS (MiB)", "%.1f", runs.rss(), nan, 64, "MiB"),
	}
	return s
}

var verifyLine = regexp.MustCompile(`checked \d+ backups, \d+ WAL segments, ([0-9.]+) MB stored \(([0-9.]+) MB raw\) in [0-9.]+s`)

// parseVerify reads the stored and raw megabytes from clinicctl verify's
// summary line.
func parseVerify(out string) (stored, raw float64, err error) {
	m := verifyLine.FindStringSubmatch(lastLine(out))
	if m == nil {
		return 0, 0, fmt.Errorf("clinicctl verify: no summary line in %q", tail(out, 500))
	}
	if stored, err = strconv.ParseFloat(m[1], 64); err != nil {
		return 0, 0, err
	}
	raw, err = strconv.ParseFloat(m[2], 64)
	return stored, raw, err
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndex(s, "\n")+1:]
}
