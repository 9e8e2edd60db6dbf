package offsite

import (
	"context"
	"sync"
	"time"
)

// WAL goes first: a base backup upload sends in chunks of about a second
// of the link (measured, or the bandwidth cap's when lower), and before
// each chunk waits while WAL is being sent, so WAL never queues behind
// more than one chunk of a base backup on a slow uplink. WAL is never
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
