package rotation

import (
	"fmt"
	"time"
)

// retention is the working state of one PlanRetention call.
type retention struct {
	sp       Space
	backups  []Backup          // oldest first
	wal      []WALFile         // oldest first
	gone     map[string]string // deleted item key -> reason
	free     int64
	need     int64
	walDaily int64
}

func newRetention(sp Space, now time.Time) *retention {
	r := &retention{
		sp:       sp,
		backups:  byTime(sp.Backups, func(b Backup) time.Time { return b.Time }),
		wal:      byTime(sp.WAL, func(w WALFile) time.Time { return w.Time }),
		gone:     map[string]string{},
		walDaily: sp.walPerDay(now),
	}
	used := sizeOf(sp.Backups, func(b Backup) int64 { return b.Size }) + sizeOf(sp.WAL, func(w WALFile) int64 { return w.Size })
	r.free = sp.Capacity - used
	r.need = sp.Need
	if r.need == 0 {
		if b := newestBackup(sp.Backups); b != nil {
			r.need = b.Size
		}
		r.need += r.walDaily
	}
	return r
}

func backupKey(b Backup) string { return "backup " + b.ID }
func walKey(w WALFile) string   { return "wal " + w.Name }

// drop deletes an item if room is still needed, and reports whether it did.
func (r *retention) drop(key string, size int64, reason string) bool {
	if r.free >= r.need {
		return false
	}
	r.gone[key], r.free = reason, r.free+size
	return true
}

// oldestKept returns the oldest restorable backup not deleted, or nil.
func (r *retention) oldestKept() *Backup {
	for i := range r.backups {
		b := &r.backups[i]
		if _, gone := r.gone[backupKey(*b)]; b.Restorable && !gone {
			return b
		}
	}
	return nil
}

// dropUnneededWAL deletes WAL older than every restorable backup kept.
func (r *retention) dropUnneededWAL(why string) {
	oldest := r.oldestKept()
	for _, w := range r.wal {
		if _, gone := r.gone[walKey(w)]; gone || (oldest != nil && !w.Time.Before(oldest.Time)) {
			continue
		}
		r.drop(walKey(w), w.Size, why)
	}
}

// makeRoom deletes in order of least use until the next backup fits.
func (r *retention) makeRoom() {
	for _, b := range r.backups {
		if !b.Restorable {
			r.drop(backupKey(b), b.Size, "deleted to make room: this backup failed its restore check, so it cannot be restored")
		}
	}
	r.dropUnneededWAL("deleted to make room: older than every restorable backup on the drive, so no restore can use it")
	newest := newestBackup(r.backups)
	for _, b := range r.backups {
		if !b.Restorable || b.ID == newest.ID {
			continue
		}
		if !r.drop(backupKey(b), b.Size, "deleted to make room: the oldest restorable backup, and newer restorable ones remain") {
			return
		}
		r.dropUnneededWAL(fmt.Sprintf("deleted to make room: only backup %s, now deleted, needed it", b.ID))
	}
}

// plan lists every item with its reasons and adds the warnings.
func (r *retention) plan() Plan {
	p := Plan{Need: r.need, Free: r.free}
	newest, oldest := newestBackup(r.backups), r.oldestKept()
	restorable := 0
	for _, b := range r.backups {
		if b.Restorable {
			restorable++
		}
	}
	for _, b := range r.backups {
		it := Item{Kind: "backup", ID: b.ID, Time: b.Time, Size: b.Size}
		switch why, gone := r.gone[backupKey(b)]; {
		case gone:
			p.Delete = append(p.Delete, it.because(why))
		case b.Restorable && restorable == 1:
			p.Keep = append(p.Keep, it.because("the only restorable backup on this drive: never deleted"))
		case b.Restorable && b.ID == newest.ID:
			p.Keep = append(p.Keep, it.because("the newest restorable backup: never deleted"))
		case !b.Restorable:
			p.Keep = append(p.Keep, it.because("failed its restore check, but there is room without deleting it"))
		default:
			p.Keep = append(p.Keep, it.because("there is room without deleting it"))
		}
	}
	for _, w := range r.wal {
		it := Item{Kind: "wal", ID: w.Name, Time: w.Time, Size: w.Size}
		switch why, gone := r.gone[walKey(w)]; {
		case gone:
			p.Delete = append(p.Delete, it.because(why))
		case oldest != nil && !w.Time.Before(oldest.Time):
			p.Keep = append(p.Keep, it.because(fmt.Sprintf("needed to restore to a point in time after backup %s", oldest.ID)))
		default:
			p.Keep = append(p.Keep, it.because("no restorable backup needs it, but there is room without deleting it"))
		}
	}
	p.Warnings = r.warnings(newest)
	return p
}

// because returns it with one reason.
func (it Item) because(reason string) Item {
	it.Reasons = append(it.Reasons, reason)
	return it
}

// warnings says when the drive is too small or still too full.
func (r *retention) warnings(newest *Backup) []string {
	var out []string
	if newest != nil && r.sp.Capacity < newest.Size+r.walDaily {
		out = append(out, fmt.Sprintf(
			"This drive (%s) is too small to hold one full backup (%s) plus a day of WAL (%s): replace it with a drive of at least %s, room for two backups.",
			bytesText(r.sp.Capacity), bytesText(newest.Size), bytesText(r.walDaily), bytesText(2*(newest.Size+r.walDaily))))
	}
	if r.free < r.need {
		out = append(out, fmt.Sprintf(
			"Even after deleting everything that may go, the next backup does not fit: it needs %s and %s is free. The newest restorable backup is kept.",
			bytesText(r.need), bytesText(max(r.free, 0))))
	}
	return out
}
