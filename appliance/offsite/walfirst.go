package offsite

import (
	"context"
	"io"
	"sync"
	"time"
)

// WAL goes first: a base backup upload sends in chunks of about a second
// of the link (measured, or the bandwidth cap's when lower), before each
// chunk waits while WAL is being sent, and within a chunk stops reading
// its body while WAL is being sent (yieldReader), so a WAL record has the
// uplink to itself rather than sharing it with the chunk in flight. WAL is never
// capped, but the bytes it sends count against the cap (throttle.spend),
// so the office-hours cap bounds the sum.

// walGate counts WAL sends in flight.
type walGate struct {
	mu      sync.Mutex
	sending int
	idle    chan struct{} // closed while nothing is being sent
}

func newWALGate() *walGate {
	g := &walGate{idle: make(chan struct{})}
	close(g.idle)
	return g
}

// begin marks a WAL send in flight.
func (g *walGate) begin() {
	g.mu.Lock()
	if g.sending == 0 {
		g.idle = make(chan struct{})
	}
	g.sending++
	g.mu.Unlock()
}

// end marks a WAL send done.
func (g *walGate) end() {
	g.mu.Lock()
	g.sending--
	if g.sending == 0 {
		close(g.idle)
	}
	g.mu.Unlock()
}

// wait blocks while WAL is being sent.
func (g *walGate) wait(ctx context.Context) error {
	g.mu.Lock()
	idle := g.idle
	g.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// linkRate estimates what the uplink carries, from the base backup chunks
// sent, to size the next chunk at about a second of it.
type linkRate struct {
	mu  sync.Mutex
	bps float64 // bytes per second; 0 until measured
}

const (
	minChunk   = 4 << 10
	firstChunk = 16 << 10 // about a second at 128 kbit/s
)

func (l *linkRate) sent(n int, d time.Duration) {
	if d <= 0 {
		return
	}
	r := float64(n) / d.Seconds()
	l.mu.Lock()
	if l.bps == 0 {
		l.bps = r
	} else {
		l.bps = 0.7*l.bps + 0.3*r
	}
	l.mu.Unlock()
}

// chunk is about a second of the link, within [minChunk, capChunk].
func (l *linkRate) chunk(capChunk int) int {
	l.mu.Lock()
	bps := l.bps
	l.mu.Unlock()
	if bps == 0 {
		return min(firstChunk, capChunk)
	}
	return min(max(int(bps), minChunk), capChunk)
}

// maxYield bounds how long one chunk's body waits for WAL in all, so the
// chunk's request ends well within reqTimeout while a backlog drains;
// past it the chunk shares the link with the WAL.
const maxYield = 30 * time.Second

// yieldSize is how much of a chunk goes between two looks at the gate:
// a quarter of a second at 128 kbit/s.
const yieldSize = 4 << 10

// yieldReader is a base upload chunk's body: it reads yieldSize bytes at a
// time, and before each waits while WAL is being sent, maxYield at most
// in all.
type yieldReader struct {
	ctx    context.Context
	gate   *walGate
	r      io.Reader
	waited time.Duration
}

func (y *yieldReader) Read(p []byte) (int, error) {
	if left := maxYield - y.waited; left > 0 {
		start := time.Now()
		ctx, cancel := context.WithTimeout(y.ctx, left)
		err := y.gate.wait(ctx)
		cancel()
		y.waited += time.Since(start)
		if err != nil && y.ctx.Err() != nil {
			return 0, err
		}
	}
	return y.r.Read(p[:min(len(p), yieldSize)])
}
