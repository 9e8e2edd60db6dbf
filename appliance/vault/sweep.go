package vault

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// arrivals returns the arrival record of every committed backup, oldest
// arrival first. A record whose claims are not yet confirmed is checked
// again against the WAL the vault holds now (the box's WAL may have
// arrived after its backup), and kept updated. b.mu is held.
func (b *box) arrivals(now time.Time) ([]*Arrival, error) {
	d, err := b.root.Open(inRepo("backups"))
	if err != nil {
		return nil, nil // no backups yet
	}
	ents, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("vault: list backups of %s: %w", b.ns, err)
	}
	var out []*Arrival
	for _, e := range ents {
		if !e.IsDir() || checkBackupID(e.Name()) != nil {
			continue // uploads in progress, deletions, anything not a backup
		}
		a, err := b.arrival(e.Name())
		if err != nil {
			return nil, err
		}
		if a.Verified == nil && len(a.Files) > 0 {
			b.confirm(a, now)
			if a.Verified != nil {
				if err := b.writeArrival(a); err != nil {
					return nil, err
				}
			}
		}
		out = append(out, a)
	}
	slices.SortFunc(out, func(x, y *Arrival) int { return x.Time.Compare(y.Time) })
	return out, nil
}

// sweep removes the uploads nothing has written to for longer than
// abandon: incomplete backups and spooled bodies. b.mu is held.
func (b *box) sweep(now time.Time, abandon time.Duration) []Removal {
	var out []Removal
	if d, err := b.root.Open(inRepo("backups")); err == nil {
		ents, _ := d.ReadDir(-1)
		d.Close()
		for _, e := range ents {
			id, ok := strings.CutPrefix(e.Name(), ".incomplete-")
			rel := stagingRel(id)
			if !ok || !e.IsDir() || now.Sub(b.lastWrite(rel)) <= abandon {
				continue
			}
			if err := b.root.RemoveAll(rel); err == nil {
				out = append(out, Removal{b.ns, "incomplete upload of backup " + id, fmt.Sprintf("no data arrived for more than %s", abandon)})
			}
		}
	}
	if d, err := b.root.Open(spoolDir); err == nil {
		ents, _ := d.ReadDir(-1)
		d.Close()
		for _, e := range ents {
			if fi, err := e.Info(); err == nil && now.Sub(fi.ModTime()) > abandon {
				b.root.Remove(filepath.Join(spoolDir, e.Name()))
			}
		}
	}
	return out
}

// lastWrite is when anything under rel last changed.
func (b *box) lastWrite(rel string) time.Time {
	var last time.Time
	sub, err := b.root.OpenRoot(rel)
	if err != nil {
		return last
	}
	defer sub.Close()
	fs.WalkDir(sub.FS(), ".", func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if fi, err := d.Info(); err == nil && fi.ModTime().After(last) {
			last = fi.ModTime()
		}
		return nil
	})
	return last
}
