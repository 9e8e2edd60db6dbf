package archive

import "os"

// writebackEvery is how much of a backup file may wait in the page cache
// before the kernel is asked to start writing it to the drive.
const writebackEvery = 8 << 20

// writeback passes writes to a file and starts the kernel writing each
// writebackEvery bytes of it to the drive while the rest still arrives.
// Without it a machine with memory to spare keeps a whole backup file in
// the page cache until the fsync at its end, and the backup's end then
// waits for the drive to write all of it (on the box's USB drive, seconds
// per hundred MB). Each time it starts a range, it waits for the ranges
// started before to reach the drive and drops them from the page cache
// (settleWriteback, dropCache has why), so a backup file of any size holds
// at most two ranges of the page cache. These are hints only: durability
// still comes from the fsync at the file's end.
type writeback struct {
	f       *os.File
	written int64                          // bytes written through it
	started int64                          // bytes whose writeback has been started
	settled int64                          // bytes written to the drive and dropped from the cache
	start   func(f *os.File, off, n int64) // writebackStart when made
	settle  func(f *os.File, off, n int64) // writebackSettle when made
}

// writebackStart starts writing a range of a file (startWriteback), and
// writebackSettle waits for an earlier range and drops it
// (settleWriteback); tests record the calls instead.
var (
	writebackStart  = startWriteback
	writebackSettle = settleWriteback
)

func newWriteback(f *os.File) *writeback {
	return &writeback{f: f, start: writebackStart, settle: writebackSettle}
}

func (w *writeback) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.written += int64(n)
	if w.written-w.started >= writebackEvery {
		w.start(w.f, w.started, w.written-w.started)
		if w.started > w.settled {
			w.settle(w.f, w.settled, w.started-w.settled)
			w.settled = w.started
		}
		w.started = w.written
	}
	return n, err
}
