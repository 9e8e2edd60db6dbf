package vault

import (
	"fmt"
	"path/filepath"
	"strings"
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

// keep decides which backups stay, from the vault's arrival records
// alone, oldest arrival first: every backup that arrived within r.Backups;
// of the verified ones (whose WAL span the vault confirmed), the newest that
// arrived before now-PITR, from which the point-in-time window starts, and
// the newest; the newest of all; and every backup a kept incremental one
// builds on. A backup arrives after it ended, so
// aging by arrival keeps at least as much as aging by its end.
func (r Retention) keep(arrivals []*Arrival, now time.Time) map[string]string {
	out := map[string]string{}
	var anchor, newest *Arrival
	for _, a := range arrivals {
		if now.Sub(a.Time) <= r.Backups {
			out[a.ID] = fmt.Sprintf("arrived within %s", r.Backups)
		}
		if a.Verified == nil {
			continue
		}
		if !a.Time.After(now.Add(-r.PITR)) {
			anchor = a
		}
		newest = a
	}
	if anchor != nil {
		out[anchor.ID] = fmt.Sprintf("starts the %s point-in-time window", r.PITR)
	}
	if newest != nil {
		out[newest.ID] = "the newest verified backup"
	}
	if n := len(arrivals); n > 0 {
		if _, ok := out[arrivals[n-1].ID]; !ok {
			out[arrivals[n-1].ID] = "the newest backup"
		}
	}
	keepChains(arrivals, out)
	return out
}

// Prune applies retention to every namespace: abandoned uploads, old
// backups, then the WAL that no kept verified backup needs.
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
	defer b.measure()
	out := b.sweep(now, v.cfg.Limits.AbandonAfter)
	arrivals, err := b.arrivals(now)
	if err != nil || len(arrivals) == 0 {
		return out, err // without a backup, WAL is all there is: keep it
	}
	keep := v.cfg.Retention.keep(arrivals, now)
	var floor *Span
	for _, a := range arrivals {
		if why, ok := keep[a.ID]; ok {
			if floor == nil && a.Verified != nil && !strings.HasPrefix(why, chainReason) {
				floor = a.Verified
			}
			continue
		}
		if err := b.repo.DeleteBackup(a.ID); err != nil {
			return out, err
		}
		b.root.Remove(arrivalRel(a.ID))
		if err := b.forget(ownedBy(a.ID)); err != nil {
			return out, err
		}
		out = append(out, Removal{b.ns, "backup " + a.ID, v.whyRemoved(a)})
		if v.cfg.Bucket != nil {
			b.pruned = append(b.pruned, "backups/"+a.ID)
		}
	}
	if floor == nil {
		return out, nil // no kept backup's WAL span is confirmed: keep all WAL
	}
	rs, err := b.pruneWAL(*floor, v.cfg.Bucket != nil)
	out = append(out, rs...)
	if err != nil {
		return out, err
	}
	rs, err = b.pruneEvictedWAL(*floor)
	return append(out, rs...), err
}

func (v *Vault) whyRemoved(a *Arrival) string {
	why := fmt.Sprintf("arrived %s, more than %s ago, and not needed for the %s window", a.Time.Format(time.RFC3339), v.cfg.Retention.Backups, v.cfg.Retention.PITR)
	if a.Verified == nil {
		why += "; its WAL span was never confirmed"
	}
	return why
}

// pruneWAL deletes the WAL before the oldest kept verified backup's start.
// With inBucket, the partial segments removed are listed in b.pruned.
func (b *box) pruneWAL(floor Span, inBucket bool) ([]Removal, error) {
	tls, err := b.repo.Timelines()
	if err != nil {
		return nil, err
	}
	first := uint64(floor.Start) / b.repo.Info.SegmentSize
	var doomed []archive.SegmentFile
	for _, tl := range tls {
		for _, s := range tl.Segments {
			if tl.TLI < floor.Timeline || (tl.TLI == floor.Timeline && s.SegNo < first) {
				doomed = append(doomed, s)
			}
		}
	}
	if len(doomed) == 0 {
		return nil, nil
	}
	if err := b.repo.DeleteSegments(doomed); err != nil {
		return nil, err
	}
	for _, s := range doomed {
		b.root.Remove(indexRel(s.TLI, s.SegNo))
		if inBucket && s.Partial {
			b.pruned = append(b.pruned, filepath.ToSlash(archive.WALFile(b.repo.Info.SegmentSize, s.TLI, s.SegNo, archive.WALPartial)))
		}
	}
	return []Removal{{b.ns, fmt.Sprintf("%d WAL segments %s..%s", len(doomed), doomed[0].Name, doomed[len(doomed)-1].Name),
		fmt.Sprintf("before the oldest kept verified backup's start %s on timeline %d", floor.Start, floor.Timeline)}}, nil
}
