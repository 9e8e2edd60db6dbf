package archive

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"filippo.io/age"
)

// ExtractOptions say where a backup is unpacked.
type ExtractOptions struct {
	Identities []age.Identity
	// Tablespaces says where each tablespace of the backup, by OID, is
	// unpacked: a directory the operator chose (empty or missing), or one
	// inside pgdata. A tablespace without an entry is refused: the
	// location recorded in backup.json, or in the tar's pg_tblspc links,
	// is never a destination (a repository can come from anyone).
	Tablespaces map[uint32]string
	// Progress, when set, is called with stored bytes read so far.
	Progress func(done int64)
}

// maxEntrySize bounds one file in a base backup: PostgreSQL splits relations
// into 1 GB segments, so anything far larger is hostile.
const maxEntrySize = 4 << 30

// Extract unpacks a backup into pgdata, which must be empty or missing.
// Every path is resolved beneath its destination with os.Root, so neither
// entries (.., absolute paths, symlinks) nor symlinks already in a
// destination lead a write outside it; device files, oversized entries and
// symlinks other than the pg_tblspc links are refused.
func (r *Repo) Extract(b *Backup, pgdata string, opt ExtractOptions) error {
	if entries, err := os.ReadDir(pgdata); err == nil && len(entries) > 0 {
		return fmt.Errorf("archive: %s is not empty; restore into an empty directory so nothing is overwritten", pgdata)
	}
	if err := os.MkdirAll(pgdata, 0o700); err != nil {
		return fmt.Errorf("archive: %w", explainFS(err))
	}
	root, err := os.OpenRoot(pgdata)
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	defer root.Close()
	x := &extraction{r: r, b: b, pgdata: pgdata, root: root, opt: opt}
	defer x.close()
	if err := x.planTablespaces(); err != nil {
		return err
	}
	var read int64
	for _, f := range b.Files {
		if err := x.file(f); err != nil {
			return err
		}
		read += f.Size
		if opt.Progress != nil {
			opt.Progress(read)
		}
	}
	return nil
}

// extraction is one run of Extract.
type extraction struct {
	r      *Repo
	b      *Backup
	pgdata string
	root   *os.Root
	opt    ExtractOptions
	byLoc  map[string]uint32   // the backup's tablespace locations: only keys, never paths
	links  map[string]string   // pg_tblspc/OID -> where its link points
	roots  map[uint32]*os.Root // each tablespace's destination
}

func (x *extraction) close() {
	for _, r := range x.roots {
		r.Close()
	}
}

// planTablespaces opens every tablespace's destination and works out its
// pg_tblspc link.
func (x *extraction) planTablespaces() error {
	x.byLoc, x.links, x.roots = map[string]uint32{}, map[string]string{}, map[uint32]*os.Root{}
	for _, ts := range x.b.Tablespaces {
		if _, dup := x.byLoc[ts.Location]; dup || ts.Location == "" {
			return fmt.Errorf("archive: backup %s: tablespace %d has an empty or repeated location %q in backup.json", x.b.ID, ts.OID, ts.Location)
		}
		x.byLoc[ts.Location] = ts.OID
		dest, ok := x.opt.Tablespaces[ts.OID]
		if !ok || !filepath.IsAbs(dest) {
			return fmt.Errorf("archive: backup %s: tablespace %d (%s in the backup) has no destination; map it to a directory", x.b.ID, ts.OID, ts.Location)
		}
		tsRoot, link, err := x.openDest(dest)
		if err != nil {
			return fmt.Errorf("archive: tablespace %d: %w", ts.OID, err)
		}
		x.roots[ts.OID] = tsRoot
		x.links["pg_tblspc/"+strconv.FormatUint(uint64(ts.OID), 10)] = link
	}
	return nil
}

// openDest opens a tablespace's destination; its pg_tblspc link holds the
// absolute path, as PostgreSQL's own links do. A destination outside
// pgdata must be empty or missing, like pgdata.
func (x *extraction) openDest(dest string) (*os.Root, string, error) {
	if rel, err := filepath.Rel(x.pgdata, dest); err == nil && filepath.IsLocal(rel) {
		if err := x.root.MkdirAll(rel, 0o700); err != nil {
			return nil, "", explainFS(err)
		}
		sub, err := x.root.OpenRoot(rel)
		return sub, dest, err
	}
	if entries, err := os.ReadDir(dest); err == nil && len(entries) > 0 {
		return nil, "", fmt.Errorf("%s is not empty; restore the tablespace into an empty directory so nothing is overwritten", dest)
	}
	if err := os.MkdirAll(dest, 0o700); err != nil {
		return nil, "", explainFS(err)
	}
	sub, err := os.OpenRoot(dest)
	return sub, dest, err
}

// file unpacks one stored file of the backup.
func (x *extraction) file(f StoredFile) error {
	switch f.Archive {
	case manifestName:
		return x.r.copyOut(x.b, f, x.root, manifestName, x.opt.Identities)
	case blockMapName:
		return nil
	}
	dest, links := x.root, x.links
	if f.Location != "" {
		oid, ok := x.byLoc[f.Location]
		if !ok {
			return fmt.Errorf("archive: backup %s: %s belongs to no tablespace listed in backup.json", x.b.ID, f.Name)
		}
		dest, links = x.roots[oid], nil
	}
	// An incremental backup's archive is rebuilt beside pgdata.
	rc, err := x.r.openArchive(x.b, f, x.opt.Identities, filepath.Dir(x.pgdata))
	if err != nil {
		return err
	}
	err = untar(rc, dest, links)
	rc.Close()
	if err != nil {
		return fmt.Errorf("archive: backup %s: %s: %w", x.b.ID, f.Name, err)
	}
	return nil
}

func (r *Repo) copyOut(b *Backup, f StoredFile, root *os.Root, name string, ids []age.Identity) error {
	rc, err := r.OpenFile(b, f, ids)
	if err != nil {
		return err
	}
	defer rc.Close()
	out, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return explainFS(err)
	}
	n, err := io.Copy(out, io.LimitReader(rc, maxEntrySize+1))
	if err == nil && n > maxEntrySize {
		err = fmt.Errorf("%s: larger than any backup manifest", f.Name)
	}
	if err != nil {
		out.Close()
		return explainFS(err)
	}
	return explainFS(errors.Join(out.Sync(), out.Close()))
}
