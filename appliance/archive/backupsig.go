package archive

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/clinicbox/clinicbox/appliance/signer"
)

// A format 2 backup carries backup.sig: the box's signature over what it
// stored (the content of each file as given to age: the database server's
// compressed tar, or clinicbox's), in chunks, so that a restore checks
// every chunk before a byte of it reaches the data directory. It is plain
// JSON, like backup.json: the vault can check the positions it keeps WAL
// for without the key. It does not cover the encrypted bytes, so a backup
// may be re-encrypted (to new recipients) without signing it again.
const (
	sigFile       = "backup.sig"
	backupPurpose = "base-backup"
	// contentChunk is the unit a reader checks before using it: small
	// enough to hold in memory once per file being read.
	contentChunk = 1 << 20
	// maxSigFile bounds backup.sig: 1 MB of it lists about 1 TB of chunks.
	maxSigFile = 16 << 20
)

// Backup kinds. Format 2 readers refuse a kind they do not know.
const (
	KindFull = "full"
	// KindIncremental is a backup whose archives are deltas (delta.go)
	// against its parent's.
	KindIncremental = "incremental"
)

// Content is one stored file's content as signed.
type Content struct {
	Name     string `json:"name"`
	Archive  string `json:"archive"`
	Location string `json:"location"`
	Size     int64  `json:"size"` // bytes given to age
	// SHA256 is the SHA-256 of all the bytes, which backups signed before
	// 2026-12 carry; empty in later ones. No reader ever checked it: the
	// signed chunk hashes and Size already bind every byte, and computing
	// it was a second SHA-256 pass over everything a backup stores.
	SHA256 string   `json:"sha256,omitempty"`
	Chunks []string `json:"chunks"` // SHA-256 of each contentChunk bytes of them
}

// Statement is what the box signs for a backup.
type Statement struct {
	Format      int          `json:"format"`
	Kind        string       `json:"kind"`             // KindFull; incremental kinds name Parent
	Parent      string       `json:"parent,omitempty"` // the backup an incremental one builds on
	ID          string       `json:"id"`
	SystemID    string       `json:"system_id"`
	Timeline    uint32       `json:"timeline"`
	StartLSN    LSN          `json:"start_lsn"`
	EndLSN      LSN          `json:"end_lsn"`
	EndTimeline uint32       `json:"end_timeline"`
	Start       time.Time    `json:"start"`
	End         time.Time    `json:"end"`
	Compression Compression  `json:"compression"`
	Tablespaces []Tablespace `json:"tablespaces,omitempty"`
	Contents    []Content    `json:"contents"`
}

// signedFile is backup.sig.
type signedFile struct {
	Statement json.RawMessage `json:"statement"`
	Signature []byte          `json:"signature"`
	Key       string          `json:"key"` // the signer, for the operator's eyes only
}

// contentHasher records a file's content as it is written: its size and
// the SHA-256 of each chunk, one pass over the bytes.
type contentHasher struct {
	c     Content
	chunk hash.Hash
	in    int // bytes in the current chunk
}

func newContentHasher(name, archive, location string) *contentHasher {
	return &contentHasher{c: Content{Name: name, Archive: archive, Location: location}, chunk: sha256.New()}
}

func (h *contentHasher) Write(p []byte) (int, error) {
	n := len(p)
	h.c.Size += int64(n)
	for len(p) > 0 {
		k := min(len(p), contentChunk-h.in)
		h.chunk.Write(p[:k])
		h.in += k
		p = p[k:]
		if h.in == contentChunk {
			h.endChunk()
		}
	}
	return n, nil
}

func (h *contentHasher) endChunk() {
	h.c.Chunks = append(h.c.Chunks, hex.EncodeToString(h.chunk.Sum(nil)))
	h.chunk.Reset()
	h.in = 0
}

func (h *contentHasher) done() Content {
	if h.in > 0 {
		h.endChunk()
	}
	return h.c
}

// statementOf is what the box signs for backup b with contents.
func statementOf(b *Backup, contents []Content) Statement {
	kind := KindFull
	if b.Kind != "" {
		kind = b.Kind
	}
	return Statement{Format: FormatVersion, Kind: kind, Parent: b.Parent, ID: b.ID, SystemID: b.SystemID, Timeline: b.Timeline,
		StartLSN: b.StartLSN, EndLSN: b.EndLSN, EndTimeline: b.EndTimeline, Start: b.Start, End: b.End,
		Compression: b.Compression, Tablespaces: b.Tablespaces, Contents: contents}
}

// signBackup writes backup.sig into the backup's directory.
func (r *Repo) signBackup(dir string, b *Backup, contents []Content) error {
	return writeFileAtomic(filepath.Join(dir, sigFile), EncodeBackupSig(r.sign, statementOf(b, contents)))
}

// EncodeBackupSig is the backup.sig of st, signed by k.
func EncodeBackupSig(k *signer.Key, st Statement) []byte {
	msg, _ := json.Marshal(st)
	// Not indented: the statement's bytes must stay exactly as signed.
	out, _ := json.Marshal(signedFile{Statement: msg, Signature: k.Sign(backupPurpose, msg), Key: k.Public().String()})
	return append(out, '\n')
}

// DecodeBackupSig checks a backup.sig against key and returns the statement
// it vouches for; errors that mean it is not key's wrap ErrForged. It
// checks nothing else (the vault, which has no key to the content, reads
// backup.sig with it too).
func DecodeBackupSig(data []byte, key signer.PublicKey) (*Statement, error) {
	var sf signedFile
	if err := json.Unmarshal(data, &sf); err != nil {
		return nil, fmt.Errorf("%w: backup.sig is damaged: %v", ErrForged, err)
	}
	if sf.Key != key.String() {
		return nil, fmt.Errorf("%w: backup.sig is signed by another key (%.60s): it may be forged; do not restore it, and keep the drive for investigation", ErrForged, sf.Key)
	}
	if err := verifyForged(key, backupPurpose, sf.Statement, sf.Signature); err != nil {
		return nil, err
	}
	var st Statement
	if err := json.Unmarshal(sf.Statement, &st); err != nil {
		return nil, fmt.Errorf("the signed statement is damaged: %w", err)
	}
	return &st, nil
}

// BackupStatement reads and checks a backup's signature against the trust
// anchor, and that backup.json says what was signed. It returns nil and a
// note for a backup written before format 2 where that is acceptable.
func (r *Repo) BackupStatement(b *Backup) (*Statement, string, error) {
	raw, err := readBounded(filepath.Join(r.Dir, "backups", b.ID, sigFile), maxSigFile)
	if errors.Is(err, os.ErrNotExist) {
		if note, ok := r.unsignedOK(b.StartLSN); ok {
			return nil, note, nil
		}
		return nil, "", fmt.Errorf("%w: backup %s carries no signature (backup.sig), in a repository where the box signs every backup", ErrForged, b.ID)
	}
	if err != nil {
		return nil, "", err
	}
	key, err := r.anchor()
	if err != nil {
		return nil, "", fmt.Errorf("backup %s: %w", b.ID, err)
	}
	st, err := DecodeBackupSig(raw, key)
	if err != nil {
		return nil, "", fmt.Errorf("backup %s: %w", b.ID, err)
	}
	if st.Kind != KindFull && (st.Kind != KindIncremental || st.Parent == "") {
		return nil, "", fmt.Errorf("backup %s is of kind %q, which this clinicctl cannot read: update clinicctl", b.ID, st.Kind)
	}
	if err := st.matches(b); err != nil {
		return nil, "", fmt.Errorf("%w: backup %s: backup.json was altered: %v", ErrForged, b.ID, err)
	}
	return st, "", nil
}

// matches reports how backup.json differs from the signed statement.
func (st *Statement) matches(b *Backup) error {
	want := statementOf(b, nil)
	got := *st
	got.Contents, got.Format = nil, want.Format
	w, _ := json.Marshal(want)
	g, _ := json.Marshal(got)
	if !bytes.Equal(w, g) {
		return errors.New("its positions, times or tablespaces differ from what the box signed")
	}
	if len(st.Contents) != len(b.Files) {
		return fmt.Errorf("it lists %d files; the box signed %d", len(b.Files), len(st.Contents))
	}
	for _, f := range b.Files {
		if !slices.ContainsFunc(st.Contents, func(c Content) bool { return c.Name == f.Name && c.Archive == f.Archive && c.Location == f.Location }) {
			return fmt.Errorf("the box did not sign a file %s", f.Name)
		}
	}
	return nil
}

// content returns the signed content of stored file f.
func (st *Statement) content(f StoredFile) *Content {
	for i := range st.Contents {
		if st.Contents[i].Name == f.Name {
			return &st.Contents[i]
		}
	}
	return nil
}

// checkedReader passes on content only after checking each chunk of it
// against the signed statement: nothing unsigned ever reaches its reader.
type checkedReader struct {
	src  io.Reader
	c    *Content
	buf  []byte
	pos  int // next byte of buf to hand out
	next int // next chunk to check
	size int64
	err  error
}

func newCheckedReader(src io.Reader, c *Content) *checkedReader {
	return &checkedReader{src: src, c: c, buf: make([]byte, 0, contentChunk)}
}

func (r *checkedReader) Read(p []byte) (int, error) {
	for r.pos == len(r.buf) {
		if r.err != nil {
			return 0, r.err
		}
		r.err = r.fill()
	}
	n := copy(p, r.buf[r.pos:])
	r.pos += n
	return n, nil
}

// fill reads and checks the next chunk.
func (r *checkedReader) fill() error {
	n, err := io.ReadFull(r.src, r.buf[:contentChunk])
	r.buf, r.pos = r.buf[:n], 0
	r.size += int64(n)
	if n == 0 && (err == io.EOF || err == io.ErrUnexpectedEOF) {
		if r.next != len(r.c.Chunks) || r.size != r.c.Size {
			return fmt.Errorf("%w: %s ends after %d bytes; the box signed %d", ErrForged, r.c.Name, r.size, r.c.Size)
		}
		return io.EOF
	}
	if err != nil && err != io.ErrUnexpectedEOF {
		return err
	}
	sum := sha256.Sum256(r.buf)
	if r.next >= len(r.c.Chunks) || hex.EncodeToString(sum[:]) != r.c.Chunks[r.next] {
		r.buf = r.buf[:0]
		return fmt.Errorf("%w: %s differs from what the box signed at byte %d", ErrForged, r.c.Name, int64(r.next)*contentChunk)
	}
	r.next++
	return nil
}
