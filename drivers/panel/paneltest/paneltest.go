// Package paneltest has a recording output and a button to press, for
// testing what the box's front panel (box step of the data path) does over
// time (with testing/synctest's clock).
package paneltest

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// Pin records every change of an output with the time it happened.
type Pin struct {
	mu      sync.Mutex
	start   time.Time
	changes []Change
}

// Change is one switch of an output.
type Change struct {
	At time.Duration // since the pin was made
	On bool
}

// NewPin starts recording now.
func NewPin() *Pin { return &Pin{start: time.Now()} }

// Set records a level.
func (p *Pin) Set(on bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.changes = append(p.changes, Change{At: time.Since(p.start), On: on})
	return nil
}

// Changes returns the recorded changes.
func (p *Pin) Changes() []Change {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Change(nil), p.changes...)
}

// On reports the last level set.
func (p *Pin) On() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.changes) > 0 && p.changes[len(p.changes)-1].On
}

// Timeline writes the changes before limit as "on@0s off@200ms ...".
func (p *Pin) Timeline(limit time.Duration) string {
	var b strings.Builder
	for _, c := range p.Changes() {
		if c.At >= limit {
			break
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		s := "off"
		if c.On {
			s = "on"
		}
		fmt.Fprintf(&b, "%s@%v", s, c.At)
	}
	return b.String()
}

// Button is a button a test presses and releases.
type Button struct {
	mu    sync.Mutex
	down  bool
	edges chan struct{}
}

// NewButton makes a released button.
func NewButton() *Button { return &Button{edges: make(chan struct{}, 64)} }

// Press pushes the button down.
func (b *Button) Press() { b.set(true) }

// Release lets it up.
func (b *Button) Release() { b.set(false) }

func (b *Button) set(down bool) {
	b.mu.Lock()
	b.down = down
	b.mu.Unlock()
	b.edges <- struct{}{}
}

// Pressed reports whether the button is down.
func (b *Button) Pressed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.down
}

// WaitForEdge waits for a press or release.
func (b *Button) WaitForEdge(timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-b.edges:
		return true
	case <-t.C:
		return false
	}
}
