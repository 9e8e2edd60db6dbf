// Package durable replaces small files on the box's /perm and on drives so
// that a crash or power cut leaves the old content or the new, never a mix
// (box and drive steps of the data path: state, keys, certificates,
// identity files).
package durable

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
)

// WriteFile replaces path with data: a temporary file in the same
// directory, fsync, rename, then fsync of the directory so that the rename
// itself survives a power cut (renameio stops at the rename). Missing
// parent directories are made, readable by their owner only. perm is
// applied as given, whatever the umask or the old file's mode.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("durable: write %s: %w", path, err)
	}
	f, err := renameio.NewPendingFile(path, renameio.WithStaticPermissions(perm))
	if err != nil {
		return fmt.Errorf("durable: write %s: %w", path, err)
	}
	defer f.Cleanup()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("durable: write %s: %w", path, err)
	}
	if err := f.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("durable: write %s: %w", path, err)
	}
	return SyncDir(dir)
}

// SyncDir makes the creation, removal and renaming of entries in dir
// durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("durable: sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("durable: sync directory %s: %w", dir, err)
	}
	return nil
}
