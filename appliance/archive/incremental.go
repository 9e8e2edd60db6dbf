package archive

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"
)

// An incremental backup holds, for each archive of a base backup, a delta
// against the same archive of its parent (an older backup of the same
// chain), the backup manifest whole, and its block map ("blockmap.age",
// not compressed, so the signed content hash is the map's own): the box
// reads a full backup from the drive, compares each block with the block
// map of the backup the vault holds, and writes the incremental into a
// spool repository on /perm, from which it is uploaded. Every file the
// delta describes is checked against the manifest (size and checksum) as
// it is read, so the box never signs an incremental of a backup that does
// not match its manifest; a restore checks the rebuilt files against the
// manifest again.
const (
	blockMapName   = "blockmap"
	blockMapStored = blockMapName + ".age"
)

// ErrTooLarge means an incremental backup would take more room than its
// writer was allowed: the box sends a full backup from the drive instead.
var ErrTooLarge = errors.New("archive: the incremental backup is larger than the spool allows")

// overLimit refuses to store more than w.limit bytes, counting cur bytes
// of the file being written.
func (w *BackupWriter) overLimit(cur int64) error {
	if w.limit <= 0 {
		return nil
	}
	n := cur
	for _, f := range w.files {
		n += f.Size
	}
	if n > w.limit {
		return fmt.Errorf("%w (%d bytes)", ErrTooLarge, w.limit)
	}
	return nil
}

// Delta starts storing the delta of one of the server's archives.
func (w *BackupWriter) Delta(archive, location string) (io.WriteCloser, error) {
	key := archiveKey(archive) + DeltaSuffix
	return w.newFile(key+".zst.age", key, location, true)
}

// BlockMap stores the backup's block map.
func (w *BackupWriter) BlockMap(m *BlockMap) error {
	fw, err := w.newFile(blockMapStored, blockMapName, "", false)
	if err != nil {
		return err
	}
	if err := m.Encode(fw); err != nil {
		fw.s.Close()
		fw.f.Close()
		return err
	}
	return fw.Close()
}

// MapBackup reads every archive of b and returns its block map, checking
// every file against the backup's manifest.
func (r *Repo) MapBackup(b *Backup, ids []age.Identity) (*BlockMap, DeltaStats, error) {
	return r.eachDelta(b, ids, nil, func(StoredFile) (io.WriteCloser, error) { return nopCloser{io.Discard}, nil })
}

// WriteIncremental writes backup b of src into r as an incremental backup
// against parent, the block map of a backup the vault holds, and returns
// it with its block map. Nothing of it is visible in r unless every file
// matched the manifest; one that would store more than limit bytes (0: no
// limit) is abandoned with ErrTooLarge.
func (r *Repo) WriteIncremental(src *Repo, b *Backup, parent *BlockMap, ids []age.Identity, limit int64) (*Backup, *BlockMap, DeltaStats, error) {
	if parent == nil || parent.Backup == "" || parent.Backup >= b.ID {
		return nil, nil, DeltaStats{}, fmt.Errorf("archive: backup %s: an incremental backup needs the block map of an older backup", b.ID)
	}
	w, err := r.NewBackup(b.ID, ClientZstd)
	if err != nil {
		return nil, nil, DeltaStats{}, err
	}
	w.limit = limit
	done := false
	defer func() {
		if !done {
			w.Abort()
		}
	}()
	m, stats, err := src.eachDelta(b, ids, parent, func(f StoredFile) (io.WriteCloser, error) {
		if f.Archive == manifestName {
			return w.Manifest()
		}
		return w.Delta(f.Archive, f.Location)
	})
	if err != nil {
		return nil, nil, stats, err
	}
	if err := w.BlockMap(m); err != nil {
		return nil, nil, stats, err
	}
	inc := *b
	inc.Kind, inc.Parent, inc.Compression, inc.Verified = KindIncremental, parent.Backup, ClientZstd, nil
	got, err := w.Commit(inc)
	if err != nil {
		return nil, nil, stats, err
	}
	done = true
	m.Backup = got.ID
	return got, m, stats, nil
}

// eachDelta reads b's manifest and archives, giving out each archive's
// delta against parent (and the manifest as it is), and returns b's block
// map. Every file of the archives must match the manifest, and every file
// of the manifest must be in an archive.
func (r *Repo) eachDelta(b *Backup, ids []age.Identity, parent *BlockMap, out func(StoredFile) (io.WriteCloser, error)) (*BlockMap, DeltaStats, error) {
	if b.Kind == KindIncremental {
		return nil, DeltaStats{}, fmt.Errorf("archive: backup %s is itself incremental; build from a full backup", b.ID)
	}
	man, text, err := r.manifestText(b, ids)
	if err != nil {
		return nil, DeltaStats{}, err
	}
	mw, err := out(StoredFile{Archive: manifestName})
	if err != nil {
		return nil, DeltaStats{}, err
	}
	if _, err := mw.Write(text); err != nil {
		return nil, DeltaStats{}, err
	}
	if err := mw.Close(); err != nil {
		return nil, DeltaStats{}, err
	}
	db := &deltaBuilder{parent: parent, child: &BlockMap{Backup: b.ID}, manifest: man, seen: map[string]bool{}}
	var stats DeltaStats
	for _, f := range b.Files {
		if f.Archive == manifestName {
			continue
		}
		if err := r.deltaOf(b, f, ids, db, out); err != nil {
			return nil, stats, fmt.Errorf("archive: backup %s: %s: %w", b.ID, f.Name, err)
		}
		stats.Add(db.stats)
	}
	for name := range man {
		if !db.seen[name] {
			return nil, stats, fmt.Errorf("archive: backup %s: %s from the manifest is in no archive", b.ID, name)
		}
	}
	return db.child, stats, nil
}

// deltaOf writes one archive's delta.
func (r *Repo) deltaOf(b *Backup, f StoredFile, ids []age.Identity, db *deltaBuilder, out func(StoredFile) (io.WriteCloser, error)) error {
	rc, err := r.OpenFile(b, f, ids)
	if err != nil {
		return err
	}
	defer rc.Close()
	w, err := out(f)
	if err != nil {
		return err
	}
	db.archive, db.prefix, db.stats = archiveKey(f.Archive), "", DeltaStats{}
	if f.Location != "" {
		oid, _, _ := strings.Cut(f.Archive, ".")
		db.prefix = "pg_tblspc/" + oid + "/"
	}
	if err := buildDelta(rc, w, db); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// manifestText reads b's manifest: its files by name, and its text.
func (r *Repo) manifestText(b *Backup, ids []age.Identity) (map[string]ManifestFile, []byte, error) {
	for _, f := range b.Files {
		if f.Archive != manifestName {
			continue
		}
		rc, err := r.OpenFile(b, f, ids)
		if err != nil {
			return nil, nil, err
		}
		text, err := io.ReadAll(io.LimitReader(rc, maxEntrySize))
		rc.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("archive: backup %s: manifest: %w", b.ID, err)
		}
		m, err := ParseManifest(text)
		if err != nil {
			return nil, nil, fmt.Errorf("archive: backup %s: %w", b.ID, err)
		}
		files := make(map[string]ManifestFile, len(m.Files))
		for _, mf := range m.Files {
			files[mf.Name()] = mf
		}
		delete(files, manifestName)
		return files, text, nil
	}
	return nil, nil, fmt.Errorf("archive: backup %s has no manifest", b.ID)
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// SaveBlockMap writes a block map durably (temporary file, fsync, rename,
// fsync the directory).
func SaveBlockMap(path string, m *BlockMap) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("archive: %w", explainFS(err))
	}
	return writeAtomic(path, m.Encode)
}

// SaveFile writes a small file durably, like SaveBlockMap.
func SaveFile(path string, data []byte) error { return writeFileAtomic(path, data) }

// LoadBlockMap reads a block map saved by SaveBlockMap and checks that it
// is whole and describes backup id; damage wraps ErrBlockMap.
func LoadBlockMap(path, id string) (*BlockMap, error) {
	data, err := readBounded(path, maxMapFile)
	if err != nil {
		return nil, fmt.Errorf("archive: block map: %w", err)
	}
	m, err := DecodeBlockMap(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if m.Backup != id {
		return nil, fmt.Errorf("%w: %s describes backup %s, not %s", ErrBlockMap, path, m.Backup, id)
	}
	return m, nil
}

// StoredBlockMap reads the block map an incremental backup carries,
// checked against the box's signature: what a replacement box builds on.
func (r *Repo) StoredBlockMap(b *Backup, ids []age.Identity) (*BlockMap, error) {
	f, ok := storedFile(b, blockMapName)
	if !ok {
		return nil, fmt.Errorf("archive: backup %s carries no block map (a full backup: the next one offsite is full too)", b.ID)
	}
	rc, err := r.OpenFile(b, f, ids)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, io.LimitReader(rc, maxMapFile)); err != nil {
		return nil, fmt.Errorf("archive: backup %s: block map: %w", b.ID, err)
	}
	m, err := DecodeBlockMap(buf.Bytes())
	if err == nil && m.Backup != b.ID {
		err = fmt.Errorf("%w: it describes backup %s", ErrBlockMap, m.Backup)
	}
	if err != nil {
		return nil, fmt.Errorf("archive: backup %s: %w", b.ID, err)
	}
	return m, nil
}

func storedFile(b *Backup, archive string) (StoredFile, bool) {
	for _, f := range b.Files {
		if f.Archive == archive {
			return f, true
		}
	}
	return StoredFile{}, false
}
