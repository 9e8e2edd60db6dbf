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

// explainFS turns the errors a drive produces into ones that say what to do,
// keeping the original for errors.Is.
func explainFS(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("%w: free space on it (old backups are removed by retention) or use a larger drive: %w", ErrDiskFull, err)
	case errors.Is(err, syscall.EROFS):
		return fmt.Errorf("%w: the drive may be failing or its write-protect switch is on; replace it: %w", ErrReadOnly, err)
	}
	return err
}
