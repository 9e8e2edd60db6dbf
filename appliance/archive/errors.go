package archive

import (
	"errors"
	"fmt"
	"syscall"
)

// ErrDiskFull means the repository's disk has no room left.
var ErrDiskFull = errors.New("the drive is full")

// ErrReadOnly means the repository's disk refuses writes.
var ErrReadOnly = errors.New("the drive is read-only")

// ErrDriveIO means the drive failed a read or write: it was pulled out
// without being ejected, or it is failing. Retrying the same drive does not
// help; the rotation's next drive takes over.
var ErrDriveIO = errors.New("the drive failed to read or write")

// explainFS turns the errors a drive produces into ones that say what to do,
// keeping the original for errors.Is.
func explainFS(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("%w: free space on it (old backups are removed by retention) or use a larger drive: %w", ErrDiskFull, err)
	case errors.Is(err, syscall.EIO):
		return fmt.Errorf("%w: it was pulled out without ejecting, or it is failing; put it back in, or eject it and use the next drive: %w", ErrDriveIO, err)
	case errors.Is(err, syscall.EROFS):
		return fmt.Errorf("%w: the drive may be failing or its write-protect switch is on; replace it: %w", ErrReadOnly, err)
	}
	return err
}
