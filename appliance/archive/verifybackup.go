package archive

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"filippo.io/age"
)

// backupState collects what one backup's archives contained, to find
// manifest files that no archive held.
type backupState struct {
	b        *Backup
	manifest map[string]ManifestFile
	mu       sync.Mutex
	seen     map[string]bool
	skip     bool       // the manifest could not be read: nothing to compare
	signed   *Statement // what the box signed; nil for a backup from before format 2
}

// queueBackup reads a backup's manifest and queues one job per archive.
func (r *Repo) queueBackup(b *Backup, br *BackupReport, rep *Report, ids []age.Identity, jobs chan<- func(*segBuf)) *backupState {
	st := &backupState{b: b, seen: map[string]bool{}}
	signed, note, err := r.checkMetadata(b, ids)
	if err != nil {
		rep.add(b.ID+"/"+backupFile, "%v", err)
		st.skip = true
		return st
	}
	if note != "" {
		rep.note("UNSIGNED: " + note)
	}
	st.signed = signed
	m, err := r.readManifest(b, signed, ids, rep)
	if err != nil {
		rep.add(b.ID+"/"+manifestName+".zst.age", "%v", err)
		st.skip = true
		return st
	}
	st.manifest = map[string]ManifestFile{}
	for _, f := range m.Files {
		st.manifest[f.Name()] = f
	}
	br.Files = len(m.Files)
	for _, f := range b.Files {
		if f.Archive == manifestName || f.Archive == blockMapName {
			continue
		}
		f := f
		jobs <- func(buf *segBuf) { r.checkArchive(st, f, rep, ids, buf) }
	}
	return st
}

func (r *Repo) readManifest(b *Backup, signed *Statement, ids []age.Identity, rep *Report) (*Manifest, error) {
	for _, f := range b.Files {
		if f.Archive != manifestName {
			continue
		}
		text, err := r.readStored(b, signed, f, ids, rep)
		if err != nil {
			return nil, err
		}
		return ParseManifest(text)
	}
	return nil, errors.New("the backup has no manifest")
}

// readStored reads a small stored file whole, checking its size and hash.
func (r *Repo) readStored(b *Backup, signed *Statement, f StoredFile, ids []age.Identity, rep *Report) ([]byte, error) {
	var out []byte
	err := r.streamStored(b, signed, f, ids, rep, func(rd io.Reader) (err error) {
		out, err = io.ReadAll(rd)
		return err
	})
	return out, err
}

// streamStored opens a stored file, hands its plaintext to use (checked
// chunk by chunk against signed, when the backup is signed), and then
// checks the stored size and SHA-256 from backup.json.
func (r *Repo) streamStored(b *Backup, signed *Statement, f StoredFile, ids []age.Identity, rep *Report, use func(io.Reader) error) error {
	var c *Content
	if signed != nil {
		if c = signed.content(f); c == nil {
			return fmt.Errorf("%w: the box did not sign this file", ErrForged)
		}
	}
	fh, err := openRegular(r.backupPath(b, f))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return errors.New("file is missing")
		}
		return err
	}
	defer fh.Close()
	sum := sha256.New()
	cr := &countingReader{r: io.TeeReader(fh, sum)}
	o, err := openChecked(cr, ids, isCompressed(f), c)
	if err != nil {
		return err
	}
	defer o.Close()
	raw := &countingReader{r: o}
	if err := use(raw); err != nil {
		return fmt.Errorf("damaged: %w", err)
	}
	io.Copy(io.Discard, raw) // anything after the tar's end still counts
	io.Copy(io.Discard, cr)
	rep.count(cr.n, raw.n)
	if cr.n != f.Size {
		return fmt.Errorf("stored size is %d bytes; backup.json says %d (truncated or extended)", cr.n, f.Size)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != f.SHA256 {
		return errors.New("stored bytes do not match the SHA-256 in backup.json")
	}
	return nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// checkArchive streams one tar and checks each file against the manifest.
func (r *Repo) checkArchive(st *backupState, f StoredFile, rep *Report, ids []age.Identity, buf *segBuf) {
	obj := st.b.ID + "/" + f.Name
	prefix := ""
	if f.Location != "" {
		oid, _, _ := strings.Cut(f.Archive, ".")
		prefix = "pg_tblspc/" + oid + "/"
	}
	err := r.streamStored(st.b, st.signed, f, ids, rep, func(rd io.Reader) error {
		if IsDelta(f) {
			tr, err := r.rebuild(st.b, f, rd, ids, "")
			if err != nil {
				return err
			}
			defer tr.Close()
			rd = tr
		}
		return eachEntry(rd, func(h *tar.Header, body io.Reader, bad string) error {
			switch {
			case bad != "":
				rep.add(obj, "entry %q: %s", h.Name, bad)
			case h.Typeflag == tar.TypeReg:
				r.checkEntry(st, obj, prefix+path.Clean(h.Name), body, rep, buf)
			}
			return nil
		})
	})
	if err != nil {
		rep.add(obj, "%v", err)
	}
}

func (r *Repo) checkEntry(st *backupState, obj, name string, tr io.Reader, rep *Report, buf *segBuf) {
	mf, ok := st.manifest[name]
	st.mu.Lock()
	st.seen[name] = true
	st.mu.Unlock()
	if !ok {
		rep.add(obj, "file %s is not in the manifest", name)
		return
	}
	hsh, format, err := newChecksum(mf.Algorithm)
	if err != nil {
		rep.add(obj, "file %s: %v", name, err)
		return
	}
	w := io.Discard
	if hsh != nil {
		w = hsh
	}
	if buf.copy == nil {
		buf.copy = make([]byte, 64<<10)
	}
	n, err := io.CopyBuffer(w, tr, buf.copy) // a backup has thousands of files: one buffer for all
	if err != nil {
		rep.add(obj, "file %s: %v", name, err)
		return
	}
	if n != mf.Size {
		rep.add(obj, "file %s has %d bytes; the manifest says %d", name, n, mf.Size)
	} else if hsh != nil && !strings.EqualFold(format(hsh.Sum(nil)), mf.Checksum) {
		rep.add(obj, "file %s: checksum mismatch", name)
	}
}

// missing reports manifest files that no archive contained.
func (st *backupState) missing(rep *Report) {
	if st.skip {
		return
	}
	for name := range st.manifest {
		if name == manifestName || st.seen[name] {
			continue
		}
		rep.add(st.b.ID, "file %s from the manifest is in no archive", name)
	}
}

// unsafeEntry says why a tar entry may not be restored, or "" when it may.
func unsafeEntry(h *tar.Header) string {
	name := h.Name
	switch {
	case strings.HasPrefix(name, "/"):
		return "absolute path"
	case name == ".." || strings.HasPrefix(name, "../") || strings.Contains(name, "/../") || strings.HasSuffix(name, "/.."):
		return "path escapes the data directory"
	case h.Typeflag == tar.TypeChar || h.Typeflag == tar.TypeBlock || h.Typeflag == tar.TypeFifo:
		return "device or pipe"
	case h.Typeflag == tar.TypeLink:
		return "hard link"
	}
	return ""
}

// checkMetadata checks backup.json: against the box's signature (format
// 2), or against its sealed copy (a backup written before format 2, where
// that is acceptable, with the note to show).
func (r *Repo) checkMetadata(b *Backup, ids []age.Identity) (*Statement, string, error) {
	signed, note, err := r.BackupStatement(b)
	if err != nil {
		return nil, note, err
	}
	dir := filepath.Join(r.Dir, "backups", b.ID)
	plain, err := readBounded(filepath.Join(dir, backupFile), maxSigFile)
	if err != nil {
		return nil, note, err
	}
	// The sealed copy also catches edits of what the signature leaves out
	// (the label, the encrypted files' sizes and hashes); a signed backup
	// need not have one.
	sealed, err := readBounded(filepath.Join(dir, backupFile+".age"), maxSigFile)
	if signed != nil && errors.Is(err, os.ErrNotExist) {
		return signed, "", nil
	}
	if err != nil {
		return nil, note, fmt.Errorf("the sealed copy of backup.json is missing: %w", err)
	}
	want, err := openBytes(sealed, ids, false)
	if err != nil {
		return nil, note, fmt.Errorf("the sealed copy of backup.json is damaged: %w", err)
	}
	if !bytes.Equal(plain, want) {
		return nil, note, errors.New("backup.json was altered (it differs from its sealed copy)")
	}
	if signed != nil {
		return signed, "", nil
	}
	return nil, "backup " + b.ID + ": " + note, nil
}

// Manifest reads and checks a backup's manifest.
func (r *Repo) Manifest(b *Backup, ids []age.Identity) (*Manifest, error) {
	signed, _, err := r.BackupStatement(b)
	if err != nil {
		return nil, err
	}
	return r.readManifest(b, signed, ids, &Report{})
}
