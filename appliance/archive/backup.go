package archive

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

const (
	incompletePrefix = ".incomplete-"
	backupFile       = "backup.json" // written last: its presence marks a complete backup
	verifyFile       = "verify.json" // the latest verification result
	manifestName     = "backup_manifest"
)

// Compression says where a base backup was compressed.
type Compression string

const (
	ServerZstd Compression = "server-zstd" // by the database server (the default)
	ClientZstd Compression = "zstd"        // by clinicbox on the way in
	NoCompress Compression = "none"        // encrypted only
)

// Backup is a complete base backup's metadata (backup.json, plain text: it
// holds positions, sizes and hashes, no patient data).
type Backup struct {
	ID          string      `json:"id"`
	SystemID    string      `json:"system_id"`
	Label       string      `json:"label"`
	Timeline    uint32      `json:"timeline"`
	StartLSN    LSN         `json:"start_lsn"`
	EndLSN      LSN         `json:"end_lsn"`
	EndTimeline uint32      `json:"end_timeline"`
	Start       time.Time   `json:"start"`
	End         time.Time   `json:"end"`
	Compression Compression `json:"compression"`
	// Kind is KindIncremental for a backup stored as deltas against
	// Parent; "" (or KindFull) for a full one.
	Kind        string       `json:"kind,omitempty"`
	Parent      string       `json:"parent,omitempty"`
	Files       []StoredFile `json:"files"`
	Tablespaces []Tablespace `json:"tablespaces,omitempty"`
	// Verified is the latest verification (verify.json), nil when never run.
	Verified *Verification `json:"-"`
}

// Tablespace maps an archive to the tablespace it came from.
type Tablespace struct {
	OID      uint32 `json:"oid"`
	Location string `json:"location"`
	Archive  string `json:"archive"`
}

// StoredFile is one file of a backup as stored.
type StoredFile struct {
	Name     string `json:"name"`     // file name in the backup directory
	Archive  string `json:"archive"`  // the server's name for it ("base.tar.zst"), or "backup_manifest"
	Location string `json:"location"` // tablespace location, "" for the data directory
	Size     int64  `json:"size"`     // stored (encrypted) bytes
	SHA256   string `json:"sha256"`   // of the stored bytes: checkable without the key
	Raw      int64  `json:"raw"`      // bytes as received from the server
}

// Verification is the result of the latest verification of a backup.
type Verification struct {
	Time     time.Time `json:"time"`
	OK       bool      `json:"ok"`
	Problems []string  `json:"problems,omitempty"`
	Bytes    int64     `json:"bytes"`
	Seconds  float64   `json:"seconds"`
}

// Good reports whether the backup verified successfully.
func (b *Backup) Good() bool { return b.Verified != nil && b.Verified.OK }

// idPattern is a backup ID: the start time in UTC, and a counter when two
// backups start in the same second.
var idPattern = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z(-[0-9]{1,9})?$`)

// ValidID reports whether id is a backup ID as NewID and its counter make
// them, such as 20261122T101500Z or 20261122T101500Z-2.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// NewID names a backup by its start time in UTC.
func NewID(t time.Time) string { return t.UTC().Format("20060102T150405Z") }

// BackupWriter receives a base backup as it streams. Nothing is visible as a
// backup until Commit renames its directory into place.
type BackupWriter struct {
	r        *Repo
	id       string
	dir      string
	compress Compression
	files    []StoredFile
	contents []Content // what each file held, for the signature
	limit    int64     // stored bytes the backup may take; 0 means no limit
}

// NewBackup starts writing a backup. Directories left by interrupted runs
// are removed first.
func (r *Repo) NewBackup(id string, c Compression) (*BackupWriter, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("archive: %q is not a backup ID", id)
	}
	// Two backups within one second get the suffixes -2, -3, ...
	for n, base := 2, id; ; n++ {
		if _, err := os.Stat(filepath.Join(r.Dir, "backups", id)); err != nil {
			break
		}
		id = fmt.Sprintf("%s-%d", base, n)
	}
	r.RemoveIncomplete()
	dir := filepath.Join(r.Dir, "backups", incompletePrefix+id)
	if err := mkdirAll(dir); err != nil {
		return nil, err
	}
	return &BackupWriter{r: r, id: id, dir: dir, compress: c}, nil
}

// RemoveIncomplete deletes what interrupted backups left behind.
func (r *Repo) RemoveIncomplete() {
	entries, _ := os.ReadDir(filepath.Join(r.Dir, "backups"))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), incompletePrefix) {
			os.RemoveAll(filepath.Join(r.Dir, "backups", e.Name()))
		}
	}
}

// Archive starts storing one of the server's archives.
func (w *BackupWriter) Archive(name, location string) (io.WriteCloser, error) {
	compress := w.compress == ClientZstd && !strings.HasSuffix(name, ".zst")
	stored := name
	if compress {
		stored += ".zst"
	}
	return w.newFile(stored+".age", name, location, compress)
}

// Manifest starts storing the backup manifest.
func (w *BackupWriter) Manifest() (io.WriteCloser, error) {
	return w.newFile(manifestName+".zst.age", manifestName, "", true)
}

func (w *BackupWriter) newFile(stored, archive, location string, compress bool) (*fileWriter, error) {
	f, err := os.OpenFile(filepath.Join(w.dir, stored), os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		return nil, fmt.Errorf("archive: %w", explainFS(err))
	}
	fw := &fileWriter{w: w, f: f, buf: bufio.NewWriterSize(newWriteback(f), segWriteBuf), sum: sha256.New(),
		meta: StoredFile{Name: stored, Archive: archive, Location: location}, content: newContentHasher(stored, archive, location)}
	fw.s, err = newTappedSealer(io.MultiWriter(fw.buf, fw.sum, &fw.meta), w.r.recips, compress, fw.content)
	if err != nil {
		f.Close()
		return nil, err
	}
	return fw, nil
}

// Write counts stored bytes into Size.
func (m *StoredFile) Write(p []byte) (int, error) { m.Size += int64(len(p)); return len(p), nil }

type fileWriter struct {
	w       *BackupWriter
	f       *os.File
	buf     *bufio.Writer // gathers age's 64 KB chunks into fewer writes to f (through a writeback)
	s       *sealer
	sum     hash.Hash
	meta    StoredFile
	content *contentHasher
}

func (fw *fileWriter) Write(p []byte) (int, error) {
	if err := fw.w.overLimit(fw.meta.Size); err != nil {
		return 0, err
	}
	n, err := fw.s.Write(p)
	fw.meta.Raw += int64(n)
	return n, explainFS(err)
}

func (fw *fileWriter) Close() error {
	err := fw.s.Close()
	if err == nil {
		err = fw.buf.Flush()
	}
	if err != nil {
		fw.f.Close()
		return explainFS(err)
	}
	if err := fw.f.Sync(); err != nil {
		fw.f.Close()
		return fmt.Errorf("archive: sync: %w", explainFS(err))
	}
	dropCache(fw.f)
	if err := fw.f.Close(); err != nil {
		return explainFS(err)
	}
	fw.meta.SHA256 = hex.EncodeToString(fw.sum.Sum(nil))
	fw.w.files = append(fw.w.files, fw.meta)
	fw.w.contents = append(fw.w.contents, fw.content.done())
	return nil
}

// Commit records the backup's metadata and makes it visible. The directory
// and its files are fsynced before the rename, so a backup is either
// complete or absent.
func (w *BackupWriter) Commit(b Backup) (*Backup, error) {
	b.ID, b.Files = w.id, w.files
	b.SystemID = w.r.Info.SystemID
	if !w.has(manifestName) {
		return nil, fmt.Errorf("archive: backup %s has no manifest; not committing it", w.id)
	}
	if w.r.sign == nil {
		return nil, fmt.Errorf("archive: backup %s: the repository was opened without the box signing key", w.id)
	}
	data, _ := json.MarshalIndent(b, "", "  ")
	data = append(data, '\n')
	// The plain metadata is readable without the key (listing, the vault);
	// the box's signature over it and the content lets every reader detect
	// any edit or forgery.
	if err := w.r.signBackup(w.dir, &b, w.contents); err != nil {
		return nil, err
	}
	// The sealed copy of backup.json is format 1's check; vaults check its
	// presence before they hold the signature check.
	sealed, err := sealBytes(data, w.r.recips, false)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(w.dir, backupFile+".age"), sealed); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(w.dir, backupFile), data); err != nil {
		return nil, err
	}
	final := filepath.Join(w.r.Dir, "backups", w.id)
	if err := os.Rename(w.dir, final); err != nil {
		return nil, fmt.Errorf("archive: %w", explainFS(err))
	}
	if err := syncDir(filepath.Dir(final)); err != nil {
		return nil, err
	}
	return &b, nil
}

func (w *BackupWriter) has(archive string) bool {
	for _, f := range w.files {
		if f.Archive == archive {
			return true
		}
	}
	return false
}

// Abort removes everything written so far.
func (w *BackupWriter) Abort() { os.RemoveAll(w.dir) }

// SetVerification records a verification result for a backup.
func (r *Repo) SetVerification(id string, v Verification) error {
	data, _ := json.MarshalIndent(v, "", "  ")
	return writeFileAtomic(filepath.Join(r.Dir, "backups", id, verifyFile), append(data, '\n'))
}
