package appliance

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/clinicbox/clinicbox/appliance/restore"
	"github.com/clinicbox/clinicbox/drivers/postgres"
	"github.com/clinicbox/clinicbox/rotation"
)

// rowCounts are the server's row counts when a backup was taken.
type rowCounts struct {
	Backup string `json:"backup"`
	postgres.RowCounts
}

// countTimeout bounds each table's count on the clinic's server.
const countTimeout = 30 * time.Second

// countRows records the server's row counts after a backup of drive, for
// the drive's drills. It runs in the backup's worker; a failure is logged,
// never the backup's.
func (a *Appliance) countRows(ctx context.Context, drive rotation.DriveID, backupID string) {
	if a.cfg.Drills == nil {
		return
	}
	rc, err := postgres.CountRows(ctx, a.dbURL, countTimeout)
	if err != nil {
		a.log.Warn("row counts not recorded", "drive", drive, "err", err)
		return
	}
	a.post(ctx, func() {
		if a.book.RowCounts == nil {
			a.book.RowCounts = map[rotation.DriveID]rowCounts{}
		}
		a.book.RowCounts[drive] = rowCounts{Backup: backupID, RowCounts: rc}
		a.saveBook()
	})
}

// checks adds a count of every recorded table to the practice's checks.
func (rc rowCounts) checks(practice *restore.Checks) *restore.Checks {
	out := &restore.Checks{}
	for _, t := range rc.Tables {
		out.Steps = append(out.Steps, restore.CheckStep{Database: t.Database, Count: t.Table,
			Recorded: &restore.RecordedCount{Rows: t.Rows, At: rc.At}})
	}
	if practice != nil {
		out.Steps = append(out.Steps, practice.Steps...)
	}
	return out
}

// drillProblems are what a report says went wrong, shortest first: the
// failure, then each failed check.
func drillProblems(rep *restore.Report) []string {
	var out []string
	for _, c := range rep.Checks {
		if !c.OK {
			out = append(out, fmt.Sprintf("%s: %s", c.Name, c.Detail))
		}
	}
	// The failing checks say more than the report's "a check failed",
	// and the first problem is what the panel and the alert show.
	if rep.Failure != "" && (rep.Failure != restore.ChecksFailed || len(out) == 0) {
		out = append([]string{summarizeFailure(rep.Failure)}, out...)
	}
	return out
}

// summarizeFailure picks from a failure (which may carry the restored
// server's log) the line that says what went wrong.
func summarizeFailure(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	pick := lines[0]
	for _, words := range []string{"is damaged", "is missing", "FATAL"} {
		if i := slices.IndexFunc(lines[1:], func(l string) bool { return strings.Contains(l, words) }); i >= 0 {
			pick = strings.TrimSuffix(pick, ":") + ": " + strings.TrimSpace(lines[1+i])
			break
		}
	}
	if len(pick) > 400 {
		pick = pick[:400] + "..."
	}
	return pick
}
