package alert

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
)

// Failed deliveries are retried after 1, then 2 minutes; Health says
// alerts are not getting through until one succeeds.
func TestRunRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, r := newTest(t, Config{})
		r.failures = 2
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go n.Run(ctx)

		n.Update(base.Add(3*time.Minute), stat(base, cond("backup failed", status.Failure, base)))
		synctest.Wait()
		if err := n.Health(); err == nil || !strings.Contains(err.Error(), "not getting through") {
			t.Errorf("health after a failed attempt: got %v; want not getting through", err)
		}
		steps := []struct {
			wait     time.Duration
			attempts int
			got      int
		}{
			{59 * time.Second, 1, 0},
			{1 * time.Second, 2, 0},
			{119 * time.Second, 2, 0},
			{1 * time.Second, 3, 1},
		}
		for _, s := range steps {
			time.Sleep(s.wait)
			synctest.Wait()
			r.mu.Lock()
			attempts, got := r.attempts, len(r.got)
			r.mu.Unlock()
			if attempts != s.attempts || got != s.got {
				t.Fatalf("after %v more: got %d attempts, %d delivered; want %d, %d", s.wait, attempts, got, s.attempts, s.got)
			}
		}
		if err := n.Health(); err != nil {
			t.Errorf("health after delivery: %v", err)
		}
		if s := n.Stats(); s.Sent != 1 || s.Failed != 2 || s.Pending != 0 || s.Dropped != 0 {
			t.Errorf("stats: got %+v; want 1 sent, 2 failed, none pending or dropped", s)
		}
	})
}

// A target that hangs does not hold up Update.
func TestUpdateNeverWaitsForSending(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, r := newTest(t, Config{})
		r.block = make(chan struct{})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go n.Run(ctx)
		n.Update(base.Add(3*time.Minute), stat(base, cond("backup failed", status.Failure, base)))
		synctest.Wait() // Run is now stuck in send
		for i := range 5 {
			now := base.Add(time.Duration(4+i) * time.Hour)
			n.Update(now, stat(now, cond("backup failed", status.Failure, base), cond("drive failing", status.Failure, now.Add(-time.Hour))))
		}
		if s := n.Stats(); s.Pending < 2 {
			t.Errorf("pending while the target hangs: got %d; want the queued alerts", s.Pending)
		}
		close(r.block)
		synctest.Wait()
		if s := n.Stats(); s.Pending != 0 || s.Sent != len(r.messages()) || s.Sent < 3 {
			t.Errorf("after the target recovers: got %+v, %d received; want everything delivered", s, len(r.messages()))
		}
	})
}

// A message that cannot be delivered for a day is given up and counted.
func TestRunGivesUpAfterADay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, r := newTest(t, Config{})
		r.failures = 1 << 30
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go n.Run(ctx)
		n.Update(base.Add(3*time.Minute), stat(base, cond("backup failed", status.Failure, base)))
		time.Sleep(25 * time.Hour)
		synctest.Wait()
		s := n.Stats()
		if s.Pending != 0 || s.Dropped != 1 || s.Failed < 24 || s.Failed > 60 {
			t.Errorf("got %+v; want nothing pending, 1 dropped, about 50 failed attempts at 30-minute pauses", s)
		}
		if n.Health() == nil {
			t.Errorf("health is fine although nothing got through")
		}
	})
}
