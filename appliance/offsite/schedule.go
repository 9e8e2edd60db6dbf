package offsite

import (
	"encoding/json"
	"fmt"
	"time"
)

// Schedule says when a base backup is due offsite.
type Schedule struct {
	// Every is the longest time between base backups in the vault. Zero
	// means weekly.
	Every time.Duration `json:"every"`
}

// Due reports whether a base backup should be uploaded now, and why: none
// is in the vault yet, the newest is older than the schedule allows, or the
// server moved to a new timeline since (a restore or a promotion), which
// the older backups cannot reach without the history in between.
func (s *Shipper) Due(now time.Time) (bool, string) {
	every := s.cfg.Schedule.Every
	if every <= 0 {
		every = 7 * 24 * time.Hour
	}
	st := s.Status()
	switch {
	case st.LastBaseBackup == "":
		return true, "the vault holds no base backup yet"
	case now.Sub(st.LastBaseBackupTime) >= every:
		return true, fmt.Sprintf("the newest base backup in the vault (%s) is older than %s", st.LastBaseBackup, every)
	case st.Timeline > st.LastBaseBackupTLI:
		return true, fmt.Sprintf("the server is on timeline %d; the newest base backup in the vault is on timeline %d", st.Timeline, st.LastBaseBackupTLI)
	}
	return false, ""
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
