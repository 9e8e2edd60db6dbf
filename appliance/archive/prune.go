package archive

import (
	"fmt"
	"os"
	"path/filepath"
)

// DeleteBackup removes a base backup. The directory is first renamed out
// of the catalog (and the rename made durable), so a crash midway leaves a
// backup that is gone, never one that is half there and listed.
func (r *Repo) DeleteBackup(id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("archive: delete backup: %q is not a backup ID", id)
	}
	dir := filepath.Join(r.Dir, "backups")
	doomed := filepath.Join(dir, ".deleting-"+id)
	if err := os.Rename(filepath.Join(dir, id), doomed); err != nil {
		return fmt.Errorf("archive: delete backup %s: %w", id, explainFS(err))
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	if err := os.RemoveAll(doomed); err != nil {
		return fmt.Errorf("archive: delete backup %s: %w", id, explainFS(err))
	}
	return nil
}

// DeleteSegments removes stored WAL segments (complete or partial) and the
// session markers among them. The caller decides which: retention deletes
// only WAL that no kept backup needs, oldest first, so what remains stays
// continuous.
func (r *Repo) DeleteSegments(segs []SegmentFile) error {
	dirs := map[string]bool{}
	for _, s := range segs {
		suffix := segSuffix
		if s.Partial {
			suffix = partialSuffix
		}
		for _, p := range []string{r.segPath(s.TLI, s.SegNo, suffix), r.segPath(s.TLI, s.SegNo, startSuffix)} {
			if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("archive: delete WAL %s: %w", s.Name, explainFS(err))
			}
		}
		dirs[r.walDir(s.TLI)] = true
	}
	for d := range dirs {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	return nil
}
