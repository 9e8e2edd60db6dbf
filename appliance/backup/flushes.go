package backup

import (
	"context"
	"errors"
	"sync"

	"github.com/clinicbox/clinicbox/drivers/postgres"
)

// Flushes tracks how far a WAL stream has stored WAL, for whoever must wait
// for a position: a backup waiting for its end, the appliance, tests. Its
// Record method is a StreamOptions.OnFlush.
type Flushes struct {
	mu      sync.Mutex
	tli     uint32
	flushed postgres.LSN
	changed chan struct{} // a token after each flush
}

// NewFlushes returns a tracker at position zero.
func NewFlushes() *Flushes { return &Flushes{changed: make(chan struct{}, 1)} }

// Record notes a flush.
func (f *Flushes) Record(tli uint32, l postgres.LSN) {
	f.mu.Lock()
	f.tli, f.flushed = tli, l
	f.mu.Unlock()
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

// Position returns the timeline and position last flushed.
func (f *Flushes) Position() (uint32, postgres.LSN) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tli, f.flushed
}

// Reached reports whether WAL up to l on timeline tli (or a later one) is stored.
func (f *Flushes) Reached(tli uint32, l postgres.LSN) bool {
	t, at := f.Position()
	return t > tli || (t == tli && at >= l)
}

// ErrStreamEnded means the stream stopped before the awaited position.
var ErrStreamEnded = errors.New("backup: the WAL stream ended before the awaited position")

// Wait blocks until WAL up to l on timeline tli is stored, the stream ends
// (ended is closed; err reports why), or ctx is done.
func (f *Flushes) Wait(ctx context.Context, tli uint32, l postgres.LSN, ended <-chan struct{}, err func() error) error {
	for !f.Reached(tli, l) {
		select {
		case <-f.changed:
		case <-ended:
			if f.Reached(tli, l) {
				return nil
			}
			if e := err(); e != nil {
				return e
			}
			return ErrStreamEnded
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
