// Package restore brings a repository back into a running PostgreSQL, the
// restore step of the data path: it picks the base backup for a recovery
// target, unpacks it, and configures recovery with clinicctl wal-fetch; and
// it runs restore drills that prove backups restore.
package restore

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
)

// Target is where recovery stops. The zero value means the latest WAL in
// the repository.
type Target struct {
	Time time.Time   // keep every transaction committed at or before Time
	LSN  archive.LSN // replay up to this WAL position
	Name string      // a restore point made with pg_create_restore_point
}

// Latest reports whether t is "as late as possible".
func (t Target) Latest() bool { return t.Time.IsZero() && t.LSN == 0 && t.Name == "" }

func (t Target) String() string {
	switch {
	case !t.Time.IsZero():
		return "time " + t.Time.Format(time.RFC3339Nano)
	case t.LSN != 0:
		return "LSN " + t.LSN.String()
	case t.Name != "":
		return "restore point " + t.Name
	}
	return "latest"
}

// ErrOutsideWindow means the target cannot be reached from the repository.
var ErrOutsideWindow = errors.New("the target is outside the recoverable window")

// Choose picks the base backup to restore from for a target: among the
// windows that contain the target, the one whose backup is newest (the
// least WAL to replay), preferring backups that verified.
func Choose(s *archive.Summary, t Target) (*archive.Backup, archive.Window, error) {
	var cands []archive.Window
	for _, w := range s.Windows {
		switch {
		case !t.Time.IsZero():
			if !t.Time.Before(w.FromTime) && !t.Time.After(w.ToTime) {
				cands = append(cands, w)
			}
		case t.LSN != 0:
			if t.LSN >= w.From && t.LSN <= w.To {
				cands = append(cands, w)
			}
		default:
			cands = append(cands, w)
		}
	}
	if len(cands) == 0 {
		return nil, archive.Window{}, fmt.Errorf("restore: %w: %s; the repository can restore to:\n%s", ErrOutsideWindow, t, describe(s.Windows))
	}
	byID := map[string]*archive.Backup{}
	for _, b := range s.Backups {
		byID[b.ID] = b
	}
	sort.SliceStable(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		switch {
		case t.Latest() && a.To != b.To:
			return a.To > b.To // reach the most WAL
		case t.Name != "":
			return a.From < b.From // a restore point may precede newer backups
		case byID[a.Backup].Good() != byID[b.Backup].Good():
			return byID[a.Backup].Good()
		}
		return a.From > b.From
	})
	w := cands[0]
	return byID[w.Backup], w, nil
}

func describe(ws []archive.Window) string {
	if len(ws) == 0 {
		return "  nothing: the repository holds no backup with the WAL it needs"
	}
	var b strings.Builder
	for _, w := range ws {
		fmt.Fprintf(&b, "  %s .. %s (LSN %s .. %s, timeline %d, backup %s)\n", w.FromTime.Format(time.RFC3339), w.ToTime.Format(time.RFC3339),
			w.From, w.To, w.Timeline, w.Backup)
	}
	return b.String()
}
