package archive

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// writeAtomic writes a file so that it is either absent or complete: write a
// temporary file, fsync it, rename it into place, fsync the directory.
func writeAtomic(path string, fill func(w io.Writer) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return fmt.Errorf("archive: %w", explainFS(err))
	}
	tmp := f.Name()
	// Stored files are ciphertext (or plain metadata): readable by all, so a
	// restore_command running as the database user can read them. The
	// secret is the identity, which never lives in the repository.
	if err := f.Chmod(filePerm); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := fill(f); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("archive: sync %s: %w", path, explainFS(err))
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("archive: close %s: %w", path, explainFS(err))
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("archive: %w", explainFS(err))
	}
	ok = true
	return syncDir(dir)
}

// writeFileAtomic writes bytes atomically.
func writeFileAtomic(path string, data []byte) error {
	return writeAtomic(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return explainFS(err)
	})
}

// Permissions of repository files and directories.
const (
	filePerm = 0o644
	dirPerm  = 0o755
)

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("archive: sync directory %s: %w", dir, err)
	}
	return nil
}

// mkdirAll creates a directory and makes its creation durable.
func mkdirAll(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return fmt.Errorf("archive: %w", explainFS(err))
	}
	return syncDir(filepath.Dir(dir))
}
