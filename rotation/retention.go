package rotation

import (
	"fmt"
	"slices"
	"time"
)

// Backup is one full backup stored on a drive.
type Backup struct {
	ID string `json:"id"`
	// Time is when the backup started; WAL from then on can roll it forward.
	Time time.Time `json:"time"`
	Size int64     `json:"size"`
	// Restorable reports whether the backup passed its restore check.
	Restorable bool `json:"restorable"`
}

// WALFile is a piece of write-ahead log stored on a drive: a segment or a
// bundle of them.
type WALFile struct {
	Name string `json:"name"`
	// Time is when the last record in the file was written.
	Time time.Time `json:"time"`
	Size int64     `json:"size"`
}

// Space is what is on one drive and what must fit on it.
type Space struct {
	// Capacity is the drive's usable size in bytes.
	Capacity int64     `json:"capacity"`
	Backups  []Backup  `json:"backups"`
	WAL      []WALFile `json:"wal"`
	// WALPerDay is how much WAL a day brings; zero means the WAL written
	// in the 24 hours before now.
	WALPerDay int64 `json:"wal_per_day,omitempty"`
	// Need is the free space wanted for the next backup; zero means the
	// newest backup's size plus WALPerDay.
	Need int64 `json:"need,omitempty"`
}

// Item is one backup or WAL file in a retention plan, with why it is kept
// or deleted.
type Item struct {
	Kind    string    `json:"kind"` // "backup" or "wal"
	ID      string    `json:"id"`
	Time    time.Time `json:"time"`
	Size    int64     `json:"size"`
	Reasons []string  `json:"reasons"`
}

// Plan says what to delete from a drive to make room for the next backup.
type Plan struct {
	Keep   []Item `json:"keep"`
	Delete []Item `json:"delete"`
	// Need is the free space wanted; Free is what there is after deleting.
	Need int64 `json:"need"`
	Free int64 `json:"free"`
	// Warnings say what staff or IT must do: the drive is too small, or
	// there is still not enough room.
	Warnings []string `json:"warnings,omitempty"`
}

// Fits reports whether the plan leaves the room wanted.
func (p Plan) Fits() bool { return p.Free >= p.Need }

// PlanRetention decides which old backups and WAL to delete from a drive so
// that the next backup fits, oldest and least useful first: backups that
// failed their check, then WAL no restorable backup can use, then the
// oldest restorable backups with the WAL only they needed. It never deletes
// the newest restorable backup, so a drive always keeps one. It returns
// every item with its reasons, like a backup tool's forget command.
func PlanRetention(sp Space, now time.Time) Plan {
	r := newRetention(sp, now)
	r.makeRoom()
	return r.plan()
}

// walPerDay returns the configured daily WAL or the last day's.
func (sp Space) walPerDay(now time.Time) int64 {
	if sp.WALPerDay > 0 {
		return sp.WALPerDay
	}
	var n int64
	for _, w := range sp.WAL {
		if w.Time.After(now.Add(-24*time.Hour)) && !w.Time.After(now) {
			n += w.Size
		}
	}
	return n
}

// newestBackup returns the newest restorable backup, else the newest one,
// else nil.
func newestBackup(bs []Backup) *Backup {
	var best *Backup
	for i := range bs {
		b := &bs[i]
		if best == nil || (b.Restorable && !best.Restorable) || (b.Restorable == best.Restorable && b.Time.After(best.Time)) {
			best = b
		}
	}
	return best
}

// byTime sorts a copy of items oldest first.
func byTime[T any](items []T, at func(T) time.Time) []T {
	out := slices.Clone(items)
	slices.SortStableFunc(out, func(a, b T) int { return at(a).Compare(at(b)) })
	return out
}

// sizeOf sums sizes.
func sizeOf[T any](items []T, size func(T) int64) int64 {
	var n int64
	for _, it := range items {
		n += size(it)
	}
	return n
}

// bytesText writes n in decimal units, as drive makers label capacity. It
// is written here because the few lines do not justify a dependency.
func bytesText(n int64) string {
	if n < 0 {
		return "-" + bytesText(-n)
	}
	units := []string{"B", "kB", "MB", "GB", "TB", "PB"}
	f, i := float64(n), 0
	for f >= 1000 && i < len(units)-1 {
		f, i = f/1000, i+1
	}
	if i == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}
