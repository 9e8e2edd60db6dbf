package bucket

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/vault/store"
)

var t0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func TestLeaseOneWriterAmongRacingNodes(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		b := New(st)
		var wg sync.WaitGroup
		won := make([]bool, 6)
		for i := range won {
			wg.Go(func() {
				_, err := b.Acquire(context.Background(), "ns", fmt.Sprintf("node%d", i), t0, time.Minute)
				won[i] = err == nil
				if err != nil && !errors.Is(err, ErrHeld) {
					t.Errorf("node%d: %v; want ErrHeld", i, err)
				}
			})
		}
		wg.Wait()
		n := 0
		for _, w := range won {
			if w {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d of 6 racing nodes hold the lease; want exactly 1", n)
		}
	})
}

// Node a is paused past its lease; node b takes the namespace over; when
// a resumes, its renewal tells it that it lost, and b's renewals go on.
func TestLeaseExpiresWhileHolderPaused(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		b := New(st)
		a, err := b.Acquire(ctx, "ns", "a", t0, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Acquire(ctx, "ns", "b", t0.Add(10*time.Second), 30*time.Second); !errors.Is(err, ErrHeld) {
			t.Fatalf("b before a's lease ran out: %v; want ErrHeld", err)
		}
		lb, err := b.Acquire(ctx, "ns", "b", t0.Add(31*time.Second), 30*time.Second)
		if err != nil {
			t.Fatalf("b after a's lease ran out: %v; want the lease", err)
		}
		if err := b.Renew(ctx, a, t0.Add(32*time.Second), 30*time.Second); !errors.Is(err, ErrLost) {
			t.Fatalf("a renewing after the takeover: %v; want ErrLost", err)
		}
		if err := b.Renew(ctx, lb, t0.Add(40*time.Second), 30*time.Second); err != nil {
			t.Errorf("b renewing: %v", err)
		}
		if again, err := b.Acquire(ctx, "ns", "b", t0.Add(50*time.Second), 30*time.Second); err != nil || again.Node != "b" {
			t.Errorf("b acquiring its own lease again: %v", err)
		}
	})
}
