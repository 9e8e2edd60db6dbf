package vault

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/clinicbox/clinicbox/appliance/archive"
)

// Base backups arrive file by file into backups/.incomplete-ID (the
// repository's own name for a backup being written), each file appended
// at the offset the vault holds durably, so an interrupted upload resumes.
// backup.json comes first: it lists every stored file's size and SHA-256,
// which is how the vault checks the ciphertext it cannot read.

var backupID = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z(-[0-9]+)?$`)

// extraFiles may accompany a backup without being listed in backup.json.
var extraFiles = map[string]bool{"backup.json.age": true, "backup.sig": true, "verify.json": true}

const maxExtra = 1 << 20

func (b *box) stagingDir(id string) string {
	return filepath.Join(b.repo.Dir, "backups", ".incomplete-"+id)
}

func (b *box) backupDir(id string) string { return filepath.Join(b.repo.Dir, "backups", id) }

// readMeta reads the backup.json of an upload in progress.
func (b *box) readMeta(id string) (*archive.Backup, error) {
	data, err := os.ReadFile(filepath.Join(b.stagingDir(id), "backup.json"))
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
	data, err := io.ReadAll(io.LimitReader(r.Body, maxExtra))
	if err != nil {
		return act, problem("malformed", "backup.json: %v", err)
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
	if _, err := os.Stat(b.backupDir(id)); err == nil {
		return act, problem("exists", "backup %s is already stored", id)
	}
	if old, err := os.ReadFile(filepath.Join(b.stagingDir(id), "backup.json")); err == nil {
		if !bytes.Equal(old, data) {
			return act, problem("mismatch", "backup %s: a different backup.json is being uploaded under this ID", id)
		}
	} else if err := b.writeFile(filepath.Join("backups", ".incomplete-"+id, "backup.json"), data); err != nil {
		return act, err
	}
	return act, v.writeProgress(w, b, id)
}

func checkMeta(id string, m *archive.Backup, info archive.Info) error {
	switch {
	case !backupID.MatchString(id) || m.ID != id:
		return problem("malformed", "backup ID %q does not match backup.json's %q", id, m.ID)
	case m.SystemID != info.SystemID:
		return problem("mismatch", "backup %s is of system %s; this repository holds system %s", id, m.SystemID, info.SystemID)
	case len(m.Files) == 0:
		return problem("malformed", "backup %s lists no files", id)
	}
	for _, f := range m.Files {
		if !validName(f.Name) || extraFiles[f.Name] || f.Name == "backup.json" || f.Size < 0 || len(f.SHA256) != 64 {
			return problem("malformed", "backup %s: file %q: needs a plain .age name, a size and a SHA-256", id, f.Name)
		}
	}
	return nil
}

func validName(n string) bool {
	return n != "" && !strings.ContainsAny(n, `/\`) && !strings.HasPrefix(n, ".") && strings.HasSuffix(n, ".age")
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
	if !backupID.MatchString(id) {
		return problem("malformed", "%q is not a backup ID", id)
	}
	p := BackupProgress{ID: id, Files: map[string]int64{}}
	dir := b.stagingDir(id)
	if _, err := os.Stat(b.backupDir(id)); err == nil {
		p.Complete, dir = true, b.backupDir(id)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && !strings.HasPrefix(e.Name(), ".") && e.Type().IsRegular() {
			p.Files[e.Name()] = fi.Size()
		}
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

// putBackupFile appends a chunk at the file's durable end.
func (v *Vault) putBackupFile(w http.ResponseWriter, r *http.Request, c *caller) (action, error) {
	id, name := r.PathValue("id"), r.PathValue("name")
	act := action{name: "backup.file", target: id + "/" + name, quiet: true}
	b, err := v.ownRepo(c)
	if err != nil {
		return act, err
	}
	b.mu.Lock()
	m, err := b.readMeta(id)
	b.mu.Unlock()
	if err != nil {
		return act, err
	}
	size, sum, ok := expected(m, name)
	if !ok {
		return act, problem("malformed", "backup %s: %q is not a file of this backup", id, name)
	}
	limit := size
	if size < 0 {
		limit = maxExtra
	}
	// The chunk is read before the box's lock is taken: a box killed or
	// cut off mid-request leaves this read waiting, and holding the lock
	// meanwhile would stop every later request of that box (its WAL too).
	chunk, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return act, problem("malformed", "backup %s: %s: %v", id, name, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	path := filepath.Join(b.stagingDir(id), name)
	var have int64
	if fi, err := os.Stat(path); err == nil {
		have = fi.Size()
	}
	off, err := strconv.ParseInt(r.URL.Query().Get("offset"), 10, 64)
	if err != nil || off != have {
		return act, &problemError{Problem{Code: "gap", Size: have,
			Error: fmt.Sprintf("vault: backup %s: %s holds %d bytes; continue at that offset, not %q", id, name, have, r.URL.Query().Get("offset"))}}
	}
	if have+int64(len(chunk)) > limit {
		return act, problem("mismatch", "backup %s: %s would grow past its size of %d bytes", id, name, limit)
	}
	if err := appendSync(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, chunk); err != nil {
		return act, err
	}
	if have+int64(len(chunk)) == size {
		if err := checkHash(path, sum); err != nil {
			os.Truncate(path, 0)
			return act, err
		}
		act.quiet = false // audit each completed file
	}
	return act, v.writeProgress(w, b, id)
}

func checkHash(path, want string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return problem("mismatch", "%s: SHA-256 %s differs from backup.json's %s; the file was discarded, upload it again", filepath.Base(path), got, want)
	}
	return nil
}

// commitBackup checks every file against backup.json once more and makes
// the backup visible by renaming its directory into place.
func (v *Vault) commitBackup(w http.ResponseWriter, r *http.Request, c *caller) (action, error) {
	id := r.PathValue("id")
	act := action{name: "backup.commit", target: id}
	b, err := v.ownRepo(c)
	if err != nil {
		return act, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, err := os.Stat(b.backupDir(id)); err == nil {
		return act, v.writeProgress(w, b, id) // committed before; the answer was lost
	}
	m, err := b.readMeta(id)
	if err != nil {
		return act, err
	}
	dir := b.stagingDir(id)
	for _, f := range m.Files {
		fi, err := os.Stat(filepath.Join(dir, f.Name))
		if err != nil || fi.Size() != f.Size {
			return act, problem("mismatch", "backup %s: %s is not complete", id, f.Name)
		}
		if err := checkHash(filepath.Join(dir, f.Name), f.SHA256); err != nil {
			os.Truncate(filepath.Join(dir, f.Name), 0)
			return act, err
		}
	}
	sealed, err := os.ReadFile(filepath.Join(dir, "backup.json.age"))
	if err != nil || !bytes.HasPrefix(sealed, ageMagic) {
		return act, problem("mismatch", "backup %s: backup.json.age (the sealed copy of backup.json) is missing or not an age file", id)
	}
	if err := syncDir(dir); err != nil {
		return act, err
	}
	if err := os.Rename(dir, b.backupDir(id)); err != nil {
		return act, fmt.Errorf("vault: commit backup %s: %w", id, err)
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return act, err
	}
	b.node = c.peer.Node
	return act, v.writeProgress(w, b, id)
}
