package vault

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/vault/store"
)

// A node keeps its arrival records beside the repository, not in the
// bucket, and retention acts on nothing else: a namespace read back from
// the bucket (a rebuilt vault, a takeover) would keep every WAL segment
// forever. So each committed backup read back gets its record made again
// as at a commit, from what the node holds now: its files' sizes against
// those its backup.json lists (their SHA-256 was checked when the backup
// arrived; hashing every backup again would hold a takeover up for
// minutes), its claims confirmed against the WAL read back, and aged from
// when its backup.json reached the bucket, which a vault node wrote,
// never a box.

// commitTimes are the times the committed backups' backup.json reached
// the bucket, by backup, among a namespace's keys.
func commitTimes(ns string, keys []store.Info) map[string]time.Time {
	out := map[string]time.Time{}
	for _, fi := range keys {
		rel := strings.TrimPrefix(fi.Key, ns+"/")
		if id, ok := backupOf(rel); ok && path.Base(rel) == "backup.json" {
			out[id] = fi.Modified
		}
	}
	return out
}

// rebuildArrivals writes the record of each backup read back into ns
// that has none.
func (v *Vault) rebuildArrivals(ns string, committed map[string]time.Time) error {
	b, err := v.getBox(ns)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.repo == nil {
		return nil
	}
	done, _, err := b.repo.Backups()
	if err != nil {
		return fmt.Errorf("vault: arrival records of %s: %w", ns, err)
	}
	for _, m := range done {
		at, ok := committed[m.ID]
		if _, err := b.root.Stat(arrivalRel(m.ID)); !ok || err == nil {
			continue
		}
		a := &Arrival{ID: m.ID, Time: at.UTC(), Node: v.cfg.Node, WAL: b.position(), Parent: m.Parent,
			Claimed: Span{Timeline: m.Timeline, Start: m.StartLSN, EndTimeline: m.EndTimeline, End: m.EndLSN}}
		if err := b.readBack(a, m.Files); err != nil {
			// Without a record the backup confirms nothing and deletes
			// nothing; the namespace is served all the same.
			v.log.Warn("backup read back without its arrival record", "op", "rehydrate", "namespace", ns, "backup", m.ID, "err", err)
			continue
		}
		b.confirm(a, v.cfg.Now())
		a.Checks = append(a.Checks, CheckResult{Check: "record", Time: v.cfg.Now().UTC(), OK: true, Detail: "rebuilt from the bucket; aged from when backup.json reached it"})
		if err := b.writeArrival(a); err != nil {
			return err
		}
	}
	return nil
}

// readBack lists a backup's files read back from the bucket in its
// record, each of the size its backup.json lists. b.mu is held.
func (b *box) readBack(a *Arrival, files []archive.StoredFile) error {
	for _, f := range files {
		if fi, err := b.root.Stat(filepath.Join(backupRel(a.ID), f.Name)); err != nil || fi.Size() != f.Size {
			return fmt.Errorf("%s is not the %d bytes its backup.json lists", f.Name, f.Size)
		}
		a.Files = append(a.Files, ArrivedFile{Name: f.Name, Size: f.Size, SHA256: f.SHA256})
	}
	return nil
}
