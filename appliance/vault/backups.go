package vault

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/clinicbox/clinicbox/appliance/archive"
)

// Base backups arrive file by file into backups/.incomplete-ID (the
// repository's own name for a backup being written), each file appended
// at the offset the vault holds durably, so an interrupted upload resumes.
// backup.json comes first: it lists every stored file's size and SHA-256,
// which is how the vault checks the ciphertext it cannot read. The ID and
// file names were checked by checkNames before any handler runs.

// extraFiles may accompany a backup without being listed in backup.json.
var extraFiles = map[string]bool{"backup.json.age": true, "backup.sig": true, "verify.json": true}

const (
	maxExtra = 1 << 20 // backup.json and each extra file
	maxFiles = 1000    // files one backup may list
)

// stagingRel and backupRel are relative to the namespace directory.
func stagingRel(id string) string { return inRepo(filepath.Join("backups", ".incomplete-"+id)) }
func backupRel(id string) string  { return inRepo(filepath.Join("backups", id)) }

// readMeta reads the backup.json of an upload in progress.
func (b *box) readMeta(id string) (*archive.Backup, error) {
	data, err := b.root.ReadFile(filepath.Join(stagingRel(id), "backup.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, problem("not_found", "backup %s: send backup.json first", id)
	}
	if err != nil {
		return nil, err
	}
	var m archive.Backup
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, problem("malformed", "backup %s: backup.json: %v", id, err)
	}
	return &m, nil
}

func (v *Vault) putBackupMeta(w http.ResponseWriter, r *http.Request, c *caller) (action, error) {
	id := r.PathValue("id")
	act := action{name: "backup.begin", target: id}
	b, err := v.ownRepo(c)
	if err != nil {
		return act, err
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxExtra+1))
	if err != nil || len(data) > maxExtra {
		return act, problem("malformed", "backup.json: unreadable or longer than 1 MiB (%v)", err)
	}
	var m archive.Backup
	if err := json.Unmarshal(data, &m); err != nil {
		return act, problem("malformed", "backup.json: %v", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := checkMeta(id, &m, b.repo.Info); err != nil {
		return act, err
	}
	if _, err := b.root.Stat(backupRel(id)); err == nil {
		return act, problem("exists", "backup %s is already stored", id)
	}
	rel := filepath.Join(stagingRel(id), "backup.json")
	if old, err := b.root.ReadFile(rel); err == nil {
		if !bytes.Equal(old, data) {
			return act, problem("mismatch", "backup %s: a different backup.json is being uploaded under this ID", id)
		}
	} else if err := b.fits(metaBytes(&m) + int64(len(data))); err != nil {
		return act, err // refused before any of it arrives
	} else if err := b.writeFile(rel, data); err != nil {
		return act, err
	}
	return act, v.writeProgress(w, b, id)
}

// metaBytes is what a backup will take: its files and the extra ones.
func metaBytes(m *archive.Backup) int64 {
	n := int64(len(extraFiles)) * maxExtra
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

func checkMeta(id string, m *archive.Backup, info archive.Info) error {
	switch {
	case m.ID != id:
		return problem("malformed", "backup ID %q does not match backup.json's %q", id, m.ID)
	case m.SystemID != info.SystemID:
		return problem("mismatch", "backup %s is of system %s; this repository holds system %s", id, m.SystemID, info.SystemID)
	case len(m.Files) == 0 || len(m.Files) > maxFiles:
		return problem("malformed", "backup %s lists %d files; a backup has 1 to %d", id, len(m.Files), maxFiles)
	}
	for _, f := range m.Files {
		if err := checkFileName(f.Name); err != nil {
			return err
		}
		if !strings.HasSuffix(f.Name, ".age") || extraFiles[f.Name] || f.Size < 0 || len(f.SHA256) != 64 {
			return problem("malformed", "backup %s: file %q: needs a plain .age name, a size and a SHA-256", id, f.Name)
		}
	}
	return nil
}

// expected returns a file's expected size and hash; size -1 means an extra
// file, bounded by maxExtra.
func expected(m *archive.Backup, name string) (int64, string, bool) {
	for _, f := range m.Files {
		if f.Name == name {
			return f.Size, f.SHA256, true
		}
	}
	return -1, "", extraFiles[name]
}

func (v *Vault) getBackup(w http.ResponseWriter, r *http.Request, c *caller) (action, error) {
	id := r.PathValue("id")
	b, err := v.ownRepo(c)
	if err != nil {
		return action{name: "backup.progress", target: id, quiet: true}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return action{name: "backup.progress", target: id, quiet: true}, v.writeProgress(w, b, id)
}

func (v *Vault) writeProgress(w http.ResponseWriter, b *box, id string) error {
	p := wire.BackupProgress{ID: id, Files: map[string]int64{}}
	dir := stagingRel(id)
	if _, err := b.root.Stat(backupRel(id)); err == nil {
		p.Complete, dir = true, backupRel(id)
	}
	if d, err := b.root.Open(dir); err == nil {
		ents, _ := d.ReadDir(-1)
		d.Close()
		for _, e := range ents {
			if fi, err := e.Info(); err == nil && !strings.HasPrefix(e.Name(), ".") && e.Type().IsRegular() {
				p.Files[e.Name()] = fi.Size()
			}
		}
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func checkHash(b *box, rel, want string) error {
	f, err := b.root.Open(rel)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, make([]byte, copyBuf)); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return problem("mismatch", "%s: SHA-256 %s differs from backup.json's %s; the file was discarded, upload it again", filepath.Base(rel), got, want)
	}
	return nil
}

// stagedSize is the durable size of a file being uploaded. b.mu is held.
func (b *box) stagedSize(rel string) int64 {
	if fi, err := b.root.Stat(rel); err == nil {
		return fi.Size()
	}
	return 0
}

// offsetGap is the answer to a chunk that does not start where the file
// ends.
func offsetGap(id, name string, have int64, off string) error {
	return &problemError{wire.Problem{Code: "gap", Size: have,
		Error: fmt.Sprintf("vault: backup %s: %s holds %d bytes; continue at that offset, not %q", id, name, have, off)}}
}

// parseOffset reads ?offset=, -1 when it is missing or not a number.
func parseOffset(r *http.Request) int64 {
	off, err := strconv.ParseInt(r.URL.Query().Get("offset"), 10, 64)
	if err != nil || off < 0 {
		return -1
	}
	return off
}
