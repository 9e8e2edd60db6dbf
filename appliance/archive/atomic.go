package archive

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// atomicFile is a file being written under a temporary name in its final
// directory: Commit makes it appear complete under its name (fsync, rename,
// fsync the directory), Abort makes it disappear. A crash leaves only the
// temporary name, which readers ignore and the WAL writer removes.
type atomicFile struct {
	*os.File
	path string
}

func createAtomic(path string) (*atomicFile, error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return nil, fmt.Errorf("archive: %w", explainFS(err))
	}
	// Stored files are ciphertext (or plain metadata): readable by all, so a
	// restore_command running as the database user can read them. The
	// secret is the identity, which never lives in the repository.
	if err := f.Chmod(filePerm); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &atomicFile{File: f, path: path}, nil
}

// Commit makes the file durable under its final name.
func (a *atomicFile) Commit() error {
	if err := a.Sync(); err != nil {
		a.Abort()
		return fmt.Errorf("archive: sync %s: %w", a.path, explainFS(err))
	}
	dropCache(a.File)
	if err := a.Close(); err != nil {
		os.Remove(a.Name())
		return fmt.Errorf("archive: close %s: %w", a.path, explainFS(err))
	}
	if err := os.Rename(a.Name(), a.path); err != nil {
		os.Remove(a.Name())
		return fmt.Errorf("archive: %w", explainFS(err))
	}
	return syncDir(filepath.Dir(a.path))
}

// Abort removes the temporary file.
func (a *atomicFile) Abort() {
	a.Close()
	os.Remove(a.Name())
}

// writeAtomic writes a file so that it is either absent or complete: write a
// temporary file, fsync it, rename it into place, fsync the directory.
func writeAtomic(path string, fill func(w io.Writer) error) error {
	f, err := createAtomic(path)
	if err != nil {
		return err
	}
	if err := fill(f); err != nil {
		f.Abort()
		return err
	}
	return f.Commit()
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
