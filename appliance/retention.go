package appliance

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/drivers/postgres"
	"github.com/clinicbox/clinicbox/rotation"
	"golang.org/x/sys/unix"
)

// makeRoom deletes what the rotation's retention plan says, so the next
// backup fits on the drive: failed backups first, then WAL no kept backup
// needs, then the oldest backups; never the newest restorable one.
func (a *Appliance) makeRoom(ctx context.Context, b *inBox) error {
	repo, err := a.openRepo(b)
	if err != nil {
		return nil // a new drive: nothing to delete
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(b.dir, &fs); err != nil {
		return fmt.Errorf("appliance: free space on %s: %w", b.dir, err)
	}
	sp := rotation.Space{Capacity: int64(fs.Blocks) * int64(fs.Bsize)}
	used := (int64(fs.Blocks) - int64(fs.Bavail)) * int64(fs.Bsize)
	backups, _, err := repo.Backups()
	if err != nil {
		return err
	}
	tls, err := repo.Timelines()
	if err != nil {
		return err
	}
	flushed, _ := b.flushed.Load().(postgres.LSN)
	var stored int64
	sp.Backups, sp.WAL, stored = driveContents(backups, tls, repo.Info.SegmentSize, flushed, a.cfg.Now())
	segs := map[string]archive.SegmentFile{}
	for _, tl := range tls {
		for _, s := range tl.Segments {
			segs[walFileName(s)] = s
		}
	}
	// Whatever else is on the drive counts as used too.
	sp.Capacity -= max(0, used-stored)
	plan := rotation.PlanRetention(sp, a.cfg.Now())
	var doomed []archive.SegmentFile
	for _, it := range plan.Delete {
		switch it.Kind {
		case "backup":
			if err := repo.DeleteBackup(it.ID); err != nil {
				return err
			}
			a.log.Info("retention: backup deleted", "drive", b.dec.Drive, "id", it.ID, "why", strings.Join(it.Reasons, "; "))
		case "wal":
			if s, ok := segs[it.ID]; ok {
				doomed = append(doomed, s)
			}
		}
	}
	if err := repo.DeleteSegments(doomed); err != nil {
		return err
	}
	for _, w := range plan.Warnings {
		a.post(ctx, func() { a.event("retention", w) })
	}
	return nil
}

// driveContents is what retention plans with: the drive's backups and WAL
// dated by the appliance's clock (walClock), and the bytes they take.
func driveContents(backups []*archive.Backup, tls []*archive.Timeline, segSize uint64, flushed archive.LSN, now time.Time) ([]rotation.Backup, []rotation.WALFile, int64) {
	var rbs []rotation.Backup
	var wal []rotation.WALFile
	var stored int64
	for _, bk := range backups {
		rb := rotation.Backup{ID: bk.ID, Time: bk.Start, Restorable: bk.Good()}
		for _, f := range bk.Files {
			rb.Size += f.Size
		}
		stored += rb.Size
		rbs = append(rbs, rb)
	}
	for _, tl := range tls {
		for _, s := range tl.Segments {
			flushed = max(flushed, archive.LSN(s.SegNo*segSize))
		}
	}
	clock := newWALClock(backups, flushed, now)
	for _, tl := range tls {
		for _, s := range tl.Segments {
			stored += s.Size
			end := archive.LSN((s.SegNo + 1) * segSize)
			wal = append(wal, rotation.WALFile{Name: walFileName(s), Time: clock.time(end), Size: s.Size})
		}
	}
	return rbs, wal, stored
}

// walFileName tells a segment's partial file from its complete one.
func walFileName(s archive.SegmentFile) string {
	if s.Partial {
		return s.Name + ".partial"
	}
	return s.Name
}
