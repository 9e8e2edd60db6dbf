package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
)

// clockFileMax bounds what is read of the clock file: one RFC 3339 time.
const clockFileMax = 128

// fileClock is the controlled clock of tests and demos (-clock-file): the
// time written in a file, running on from there at real speed. Whoever
// drives it writes a later time to jump forward (to the swap, the nightly
// backup, the next day); it never moves back. The box's own image never
// sets the flag: on the box the clock is the kernel's.
type fileClock struct {
	path string

	mu   sync.Mutex
	base time.Time // the time last read from the file
	at   time.Time // the real time it was read, with its monotonic reading
	raw  string    // the file's text then
}

// openFileClock reads the clock file once; it must hold a valid time.
func openFileClock(path string) (*fileClock, error) {
	c := &fileClock{path: path}
	if _, err := c.read(); err != nil {
		return nil, err
	}
	return c, nil
}

// Now is the file's time plus the real time since it was read.
func (c *fileClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base.Add(time.Since(c.at))
}

// read takes a new time from the file and reports whether it changed.
// A time before the clock's current one is refused: the appliance's
// decisions assume time only moves forward.
func (c *fileClock) read() (bool, error) {
	f, err := os.Open(c.path)
	if err != nil {
		return false, fmt.Errorf("clock: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, clockFileMax+1))
	if err != nil {
		return false, fmt.Errorf("clock: read %s: %w", c.path, err)
	}
	if len(b) > clockFileMax {
		return false, fmt.Errorf("clock: %s holds more than one time: write one RFC 3339 time, such as 2026-12-03T21:00:00Z", c.path)
	}
	raw := strings.TrimSpace(string(b))
	c.mu.Lock()
	defer c.mu.Unlock()
	if raw == c.raw {
		return false, nil
	}
	t, err := time.Parse(time.RFC3339Nano, raw)
	if err != nil {
		return false, fmt.Errorf("clock: %s: %w; write one RFC 3339 time, such as 2026-12-03T21:00:00Z", c.path, err)
	}
	if !c.at.IsZero() {
		if now := c.base.Add(time.Since(c.at)); t.Before(now) {
			c.raw = raw // refused once, not at every poll
			return false, fmt.Errorf("clock: %s sets %s, before the clock's %s: the clock only moves forward", c.path, t.Format(time.RFC3339), now.Format(time.RFC3339))
		}
	}
	c.base, c.at, c.raw = t, time.Now(), raw
	return true, nil
}

// watch reads the file every interval until ctx ends and calls moved
// after each change, so the appliance looks at the new time at once
// instead of at its next tick.
func (c *fileClock) watch(ctx context.Context, every time.Duration, moved func(), log *slog.Logger) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		changed, err := c.read()
		if err != nil {
			log.Warn("the clock file is not taken", "err", err)
			continue
		}
		if changed {
			// The line the fault suite and the soak wait for; the soak
			// reads the goroutines from it, to see that none leak.
			log.Info("clock moved", "now", c.Now().Format(time.RFC3339Nano), "goroutines", runtime.NumGoroutine())
			moved()
		}
	}
}
