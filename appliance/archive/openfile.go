package archive

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// A repository can come from a stranger's drive: every file in it is
// opened without following a symbolic link at its last step (the box
// mounts drives nosymfollow, which covers the rest of the path), without
// waiting on a FIFO, and only if it is a regular file.

// openRegular opens a repository file for reading.
func openRegular(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if pe, ok := err.(*fs.PathError); ok && pe.Err == syscall.ELOOP {
			return nil, fmt.Errorf("archive: %s is a symbolic link, which the box never writes; the repository may have been tampered with", path)
		}
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("archive: %s is not a regular file (%s); the repository may have been tampered with", path, fi.Mode().Type())
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// ReadBounded reads a whole repository file of at most limit bytes: a
// regular file (not a link or a device), and an error beyond limit.
func ReadBounded(path string, limit int64) ([]byte, error) { return readBounded(path, limit) }

// readBounded reads a whole repository file of at most limit bytes.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err == nil && int64(len(b)) > limit {
		err = fmt.Errorf("archive: %s is larger than %d bytes: not a file the box wrote", path, limit)
	}
	return b, err
}
