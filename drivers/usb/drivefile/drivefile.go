// Package drivefile opens and reads files on a drive that anyone may have
// written (drive step of the data path): it never follows a symbolic link,
// never waits on a FIFO or a device, reads only regular files, never more
// than a cap, and gives up on a drive that stops answering.
package drivefile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Errors that say why a file on a drive was refused.
var (
	// ErrNotRegular means the name is a FIFO, a device, a socket or a
	// directory, or a symbolic link anywhere on its path.
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge means the file is larger than the reader allows.
	ErrTooLarge = errors.New("larger than allowed")
	// ErrTimeout means the drive did not answer in time.
	ErrTimeout = errors.New("the drive did not answer in time")
)

// Timeout is how long ReadFile waits for a drive when ctx has no earlier
// deadline.
const Timeout = 15 * time.Second

// Open opens path for reading without following a symbolic link anywhere
// on the path and without blocking on a FIFO, and insists (fstat, after
// opening, so nothing can swap the file in between) on a regular file of
// at most max bytes. The caller must still read no more than max: a file
// can grow after Open.
func Open(path string, max int64) (*os.File, error) {
	fd, err := openNoFollow(path)
	if errors.Is(err, unix.ELOOP) {
		return nil, fmt.Errorf("drivefile: open %s: a symbolic link: %w", path, ErrNotRegular)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("drivefile: open %s: %w", path, ErrNotRegular)
	}
	if st.Size > max {
		unix.Close(fd)
		return nil, fmt.Errorf("drivefile: open %s: %d bytes, %w (%d)", path, st.Size, ErrTooLarge, max)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// openNoFollow opens with openat2's RESOLVE_NO_SYMLINKS (no link anywhere
// on the path), or with O_NOFOLLOW (the last name only) on a kernel
// without openat2.
func openNoFollow(path string) (int, error) {
	flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC | unix.O_NOCTTY
	var fd int
	var err error
	for range 3 { // a signal can interrupt an open on a slow drive
		fd, err = unix.Openat2(unix.AT_FDCWD, path, &unix.OpenHow{Flags: uint64(flags), Resolve: unix.RESOLVE_NO_SYMLINKS})
		if errors.Is(err, unix.ENOSYS) {
			fd, err = unix.Open(path, flags, 0)
		}
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	return fd, err
}

// ReadFile reads the whole of a file opened with Open, at most max bytes,
// away from the caller's goroutine: it returns when ctx ends or after
// Timeout even if the drive hangs in the read.
func ReadFile(ctx context.Context, path string, max int64) ([]byte, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, Timeout, ErrTimeout)
	defer cancel()
	type result struct {
		b   []byte
		err error
	}
	res := make(chan result, 1) // the reader never waits for a caller that left
	go func() {
		b, err := read(path, max)
		res <- result{b, err}
	}()
	select {
	case r := <-res:
		return r.b, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("drivefile: read %s: %w", path, context.Cause(ctx))
	}
}

func read(path string, max int64) ([]byte, error) {
	f, err := Open(path, max)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("drivefile: read %s: %w", path, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("drivefile: read %s: grew while read, %w (%d)", path, ErrTooLarge, max)
	}
	return b, nil
}
