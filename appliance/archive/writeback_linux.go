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
	control(f, func(fd int) { unix.SyncFileRange(fd, off, n, unix.SYNC_FILE_RANGE_WRITE) })
}

// settleWriteback waits for the kernel to finish writing a range of f whose
// writeback was started earlier, then drops the range from the page cache
// (dropCache). Errors are ignored, as startWriteback's: the fsync at the
// file's end is what makes it durable.
func settleWriteback(f *os.File, off, n int64) {
	control(f, func(fd int) {
		unix.SyncFileRange(fd, off, n, unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
		unix.Fadvise(fd, off, n, unix.FADV_DONTNEED)
	})
}

// dropCache drops f's pages from the page cache once they are on the
// drive (posix_fadvise POSIX_FADV_DONTNEED, as PostgreSQL does for each WAL
// segment it closes); pages not yet written stay. The box writes a file
// of its repository once and reads it rarely (a restore, a check, the
// offsite shipper), so keeping its pages would only push out memory the
// box uses, and a check that reads the file back then reads the drive,
// not the cache. The pages go back to the kernel at once, and the next
// file written reuses them: on a machine that hands idle memory back to
// its host, writing into memory not touched for seconds costs more system
// time than anything else the stream does (see bench/RESULTS.md).
func dropCache(f *os.File) {
	control(f, func(fd int) { unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED) })
}

func control(f *os.File, fn func(fd int)) {
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { fn(int(fd)) })
	}
}
