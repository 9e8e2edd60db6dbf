package archive

import (
	"sync/atomic"
	"time"
)

// drivePace tells whether the drive holds a stream up while it catches up
// on a backlog. S2 is the right codec there only while compressing is what
// limits the drain. On the box's own medium, a USB drive, writing is: S2
// frames are half as large again as zstd's, so the drive takes half as
// long again to take them, and a drain of 8 clinic days onto a drive held
// to 30 MB/s took 10.1 s with S2 against 6.6 s with zstd alone (see
// bench/RESULTS.md). The writer measures how much of its time it spends
// waiting for the drive: handing a segment to the committer while the one
// before is still being synced, and writes that take longer than copying
// into the page cache does (the kernel holds a writer up once the drive is
// behind). While that is most of its time, frames are stored with zstd:
// fewer bytes for the drive, and compression has time to spare. When zstd
// makes the compressors the limit instead, the writer stops waiting and
// S2 comes back, so a drain settles on whichever codec, or mix of them,
// moves WAL fastest.
type drivePace struct {
	began  time.Time     // the start of the current span: a hand-over, or the first write after an idle span
	waited time.Duration // time waited for the drive in the span
	// The time waited and the time spent over past spans, each span
	// weighing paceDecay as much as the one after it: a share of time, so
	// a short span that did not wait (a segment that found the committer
	// free) moves it little.
	pastWaited, pastSpent float64
	bound                 atomic.Bool // the drive took over driveBoundShare of the time: store zstd while behind
}

const (
	// driveBoundShare is the share of the writer's time spent waiting for
	// the drive beyond which the drive is what limits the drain.
	driveBoundShare = 0.5
	// paceDecay is how much a span weighs against the one after it.
	paceDecay = 0.75
	// pageCacheWrite is how long a write of one byte into the page cache
	// may take before the rest is counted as waiting for the drive: 5 ms
	// per MB, several times what a write costs on a machine whose page
	// cache takes it at once.
	pageCacheWrite = 5 * time.Nanosecond
)

// wrote notes a write of n bytes that took d.
func (p *drivePace) wrote(n int, d time.Duration) {
	if p.began.IsZero() {
		p.began = time.Now().Add(-d)
	}
	if excess := d - time.Duration(n)*pageCacheWrite; excess > 0 {
		p.waited += excess
	}
}

// handedOver notes that a complete segment waited d to be handed to the
// committer, and closes the span.
func (p *drivePace) handedOver(d time.Duration) {
	now := time.Now()
	p.waited += d
	if span := now.Sub(p.began); !p.began.IsZero() && span > 0 {
		p.pastWaited = paceDecay*p.pastWaited + float64(min(p.waited, span))
		p.pastSpent = paceDecay*p.pastSpent + float64(span)
		p.bound.Store(p.pastWaited > driveBoundShare*p.pastSpent)
	}
	p.began, p.waited = now, 0
}

// idle forgets the span: the stream stopped (a flush, a reset), and the
// time until it writes again waits for the server, not for the drive.
func (p *drivePace) idle() { p.began, p.waited = time.Time{}, 0 }

// pacedWriter passes a segment's writes to its file and times them.
type pacedWriter struct {
	f interface{ Write([]byte) (int, error) }
	p *drivePace
}

func (w pacedWriter) Write(b []byte) (int, error) {
	start := time.Now()
	n, err := w.f.Write(b)
	w.p.wrote(n, time.Since(start))
	return n, err
}
