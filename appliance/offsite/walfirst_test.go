package offsite

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// A base upload's next chunk waits while WAL is being sent, and goes once
// it is sent.
func TestBaseUploadWaitsForWAL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newWALGate()
		if err := g.wait(context.Background()); err != nil {
			t.Fatalf("no WAL in flight: %v", err)
		}
		g.begin()
		g.begin()
		done := make(chan error, 1)
		go func() { done <- g.wait(context.Background()) }()
		g.end()
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("the base upload went on while WAL was being sent")
		default:
		}
		g.end()
		synctest.Wait()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatal("the base upload still waits after the WAL was sent")
		}
	})
}

// What WAL sends counts against the cap: base upload chunks after 64 KiB
// of WAL under a 64 KiB/s cap wait a second longer.
func TestWALCountsAgainstTheCap(t *testing.T) {
	for _, tc := range []struct {
		name string
		wal  int
		want time.Duration
	}{
		{"no WAL", 0, 4 * time.Second},
		{"64 KiB of WAL", 64 << 10, 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				th := newThrottle(OfficeHours(0, 24, 512<<10, 512<<10), time.Now) // 64 KiB/s
				th.spend(tc.wal)
				start := time.Now()
				for range 4 {
					if err := th.wait(context.Background(), th.chunk()); err != nil {
						t.Fatal(err)
					}
				}
				if got := time.Since(start); got != tc.want {
					t.Errorf("4 chunks of 64 KiB took %s; want %s", got, tc.want)
				}
			})
		})
	}
}

// Chunks are about a second of the measured link, so WAL never waits long
// behind one.
func TestChunkFollowsTheLink(t *testing.T) {
	var l linkRate
	if got := l.chunk(1 << 20); got != firstChunk {
		t.Errorf("before any measurement: %d; want %d", got, firstChunk)
	}
	l.sent(32<<10, 2*time.Second) // 128 kbit/s
	if got := l.chunk(1 << 20); got != 16<<10 {
		t.Errorf("at 128 kbit/s: %d; want %d", got, 16<<10)
	}
	if got := l.chunk(8 << 10); got != 8<<10 {
		t.Errorf("under a lower cap: %d; want %d", got, 8<<10)
	}
}

// A base upload chunk already in flight stops reading its body while WAL
// is being sent, and goes on once it is sent; WAL that keeps going holds
// it back maxYield at most.
func TestChunkInFlightYieldsToWAL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newWALGate()
		y := &yieldReader{ctx: context.Background(), gate: g, r: strings.NewReader(strings.Repeat("x", 3*yieldSize))}
		buf := make([]byte, 1<<20)
		if n, err := y.Read(buf); n != yieldSize || err != nil {
			t.Fatalf("with no WAL in flight: read %d, %v; want %d", n, err, yieldSize)
		}
		g.begin()
		read := make(chan int, 1)
		go func() { n, _ := y.Read(buf); read <- n }()
		synctest.Wait()
		select {
		case <-read:
			t.Fatal("the chunk's body went on while WAL was being sent")
		default:
		}
		g.end()
		if n := <-read; n != yieldSize {
			t.Fatalf("after the WAL: read %d; want %d", n, yieldSize)
		}
		g.begin()
		start := time.Now()
		if n, _ := y.Read(buf); n != yieldSize || time.Since(start) != maxYield {
			t.Errorf("behind WAL that keeps going: read %d after %s; want %d after %s", n, time.Since(start), yieldSize, maxYield)
		}
		g.end()
	})
}
