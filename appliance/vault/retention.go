package vault

import (
	"fmt"
	"os"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
)

// Retention says how long the vault keeps what it stores.
type Retention struct {
	// PITR is how far back a point-in-time restore must reach. Zero means
	// 7 days.
	PITR time.Duration `json:"pitr"`
	// Backups is how long base backups are kept. Zero means 5 weeks, with
	// the weekly schedule five of them.
	Backups time.Duration `json:"backups"`
}

func (r Retention) withDefaults() Retention {
	if r.PITR <= 0 {
		r.PITR = 7 * 24 * time.Hour
	}
	if r.Backups <= 0 {
		r.Backups = 35 * 24 * time.Hour
	}
	return r
}

// Removal is one thing retention removed and why.
type Removal struct {
	Namespace string `json:"namespace"`
	What      string `json:"what"`
	Why       string `json:"why"`
}

// keep decides which backups stay: every backup younger than r.Backups;
// the newest one that ended before now-PITR, from which the point-in-time
// window starts; and the newest one in any case. backups are oldest first.
func (r Retention) keep(backups []*archive.Backup, now time.Time) map[string]string {
	out := map[string]string{}
	var anchor *archive.Backup
	for _, b := range backups {
		if now.Sub(b.End) <= r.Backups {
			out[b.ID] = fmt.Sprintf("younger than %s", r.Backups)
		}
		if !b.End.After(now.Add(-r.PITR)) {
			anchor = b
		}
	}
	if anchor != nil {
		out[anchor.ID] = fmt.Sprintf("starts the %s point-in-time window", r.PITR)
	}
	if n := len(backups); n > 0 {
		out[backups[n-1].ID] = "the newest backup"
	}
	return out
}

// Prune applies retention to every namespace: old backups first, then the
// WAL that no kept backup needs.
func (v *Vault) Prune(now time.Time) ([]Removal, error) {
	names, err := v.namespaces()
	if err != nil {
		return nil, err
	}
	var out []Removal
	for _, ns := range names {
		b, err := v.getBox(ns)
		if err != nil {
			return out, err
		}
		rs, err := v.pruneBox(b, now)
		out = append(out, rs...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

func (v *Vault) pruneBox(b *box, now time.Time) ([]Removal, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	backups, _, err := b.repo.Backups()
	if err != nil || len(backups) == 0 {
		return nil, err // without a backup, WAL is all there is: keep it
	}
	keep := v.cfg.Retention.keep(backups, now)
	var out []Removal
	var oldest *archive.Backup
	for _, bk := range backups {
		if _, ok := keep[bk.ID]; ok {
			if oldest == nil {
				oldest = bk
			}
			continue
		}
		if err := b.repo.DeleteBackup(bk.ID); err != nil {
			return out, err
		}
		out = append(out, Removal{b.ns, "backup " + bk.ID, fmt.Sprintf("ended %s, older than %s and not needed for the %s window", bk.End.Format(time.RFC3339), v.cfg.Retention.Backups, v.cfg.Retention.PITR)})
	}
	tls, err := b.repo.Timelines()
	if err != nil {
		return out, err
	}
	size := b.repo.Info.SegmentSize
	first := uint64(oldest.StartLSN) / size
	var doomed []archive.SegmentFile
	for _, tl := range tls {
		for _, s := range tl.Segments {
			if tl.TLI < oldest.Timeline || (tl.TLI == oldest.Timeline && s.SegNo < first) {
				doomed = append(doomed, s)
			}
		}
	}
	if len(doomed) == 0 {
		return out, nil
	}
	if err := b.repo.DeleteSegments(doomed); err != nil {
		return out, err
	}
	for _, s := range doomed {
		os.Remove(b.indexPath(s.TLI, s.SegNo))
	}
	out = append(out, Removal{b.ns, fmt.Sprintf("%d WAL segments %s..%s", len(doomed), doomed[0].Name, doomed[len(doomed)-1].Name),
		fmt.Sprintf("before the oldest kept backup %s", oldest.ID)})
	return out, nil
}
