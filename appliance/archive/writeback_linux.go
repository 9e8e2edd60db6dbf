package archive

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing a range of f to the
// drive and returns at once (sync_file_range with SYNC_FILE_RANGE_WRITE,
// as PostgreSQL's backend_flush_after does). Errors are ignored: it is a
// hint, and a file system without it writes the range at the fsync.
func startWriteback(f *os.File, off, n int64) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) { unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WRITE) })
}
