package vault

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Every file the vault writes for a box goes through the namespace's
// os.Root, with paths relative to the namespace directory (repo/...,
// index/..., arrivals/..., spool/...): a name that slipped past the checks
// still cannot reach outside it.

// inRepo is a path relative to the repository, as one relative to the
// namespace directory.
func inRepo(rel string) string { return filepath.Join("repo", rel) }

// writeFile writes a file atomically (temporary file, fsync, rename, fsync
// the directory). rel is relative to the namespace directory.
func (b *box) writeFile(rel string, data []byte) error {
	dir := filepath.Dir(rel)
	if err := b.root.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("vault: store %s: %w", rel, err)
	}
	tmp := filepath.Join(dir, ".tmp-"+randomName())
	f, err := b.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("vault: store %s: %w", rel, err)
	}
	defer b.root.Remove(tmp)
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = b.root.Rename(tmp, rel)
	}
	if err == nil {
		err = b.syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("vault: store %s: %w", rel, err)
	}
	b.used += int64(len(data))
	return nil
}

// appendSync appends n bytes from src to a file and fsyncs it; a new
// file's directory entry is synced too.
func (b *box) appendSync(rel string, flags int, src io.Reader, n int64) error {
	_, statErr := b.root.Stat(rel)
	f, err := b.root.OpenFile(rel, flags, 0o644)
	if err != nil {
		return fmt.Errorf("vault: store %s: %w", filepath.Base(rel), err)
	}
	var wrote int64
	wrote, err = io.CopyBuffer(f, io.LimitReader(src, n), make([]byte, copyBuf))
	if err == nil && wrote != n {
		err = io.ErrUnexpectedEOF
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && statErr != nil {
		err = b.syncDir(filepath.Dir(rel))
	}
	b.used += wrote
	if err != nil {
		return fmt.Errorf("vault: store %s: %w", filepath.Base(rel), err)
	}
	return nil
}

// copyBuf is the chunk a body moves through memory in.
const copyBuf = 256 << 10

func (b *box) syncDir(rel string) error { return syncRootDir(b.root, rel) }

func randomName() string {
	var r [8]byte
	rand.Read(r[:])
	return hex.EncodeToString(r[:])
}

// discard empties a file whose content failed its check, so its upload
// starts again from the beginning.
func (b *box) discard(rel string) {
	if f, err := b.root.OpenFile(rel, os.O_WRONLY|os.O_TRUNC, 0); err == nil {
		f.Sync()
		f.Close()
	}
}
