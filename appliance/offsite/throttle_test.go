package offsite

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
)

// The cap follows the hour: bytes over fake time match the rate of each
// hour to within one chunk, the bucket's size.
func TestThrottleFollowsTheHour(t *testing.T) {
	for _, tc := range []struct {
		name  string
		bw    Bandwidth
		start int // hour of day the upload starts
		bytes int
		want  time.Duration
	}{
		{"office hours at 128 kbit/s", OfficeHours(7, 19, 128<<10, 0), 9, 1 << 20, 64 * time.Second},
		{"night uncapped", OfficeHours(7, 19, 128<<10, 0), 22, 100 << 20, 0},
		{"1 Mbit/s", OfficeHours(0, 24, 1<<20, 1<<20), 3, 10 << 20, 80 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// The bubble's clock starts at midnight UTC; move to the hour.
				time.Sleep(time.Until(time.Now().UTC().Truncate(24 * time.Hour).Add(time.Duration(tc.start) * time.Hour)))
				th := newThrottle(tc.bw, func() time.Time { return time.Now().UTC() })
				start := time.Now()
				for sent := 0; sent < tc.bytes; {
					n := min(th.chunk(), tc.bytes-sent)
					if err := th.wait(context.Background(), n); err != nil {
						t.Fatal(err)
					}
					sent += n
				}
				got := time.Since(start)
				slack := time.Second // the first chunk goes out at once
				if got < tc.want-slack || got > tc.want {
					t.Errorf("sent %d bytes in %s; want %s (within %s)", tc.bytes, got, tc.want, slack)
				}
			})
		})
	}
}

// An upload that runs from office hours into the night speeds up at the
// hour.
func TestThrottleSpeedsUpAtNight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		time.Sleep(time.Until(time.Now().UTC().Truncate(24 * time.Hour).Add(19*time.Hour - 10*time.Second)))
		th := newThrottle(OfficeHours(7, 19, 64<<10, 8<<20), func() time.Time { return time.Now().UTC() })
		start := time.Now()
		// 10 s at 8 KB/s is 80 KB; the remaining 9 MB at 1 MB/s take 9 s.
		for sent := 0; sent < 80<<10+9<<20; {
			n := th.chunk()
			if err := th.wait(context.Background(), n); err != nil {
				t.Fatal(err)
			}
			sent += n
		}
		if got := time.Since(start); got < 18*time.Second || got > 21*time.Second {
			t.Errorf("took %s; want about 19 s (10 s capped, then 9 s at the night rate)", got)
		}
	})
}

func TestBandwidthValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		bw   Bandwidth
		ok   bool
	}{
		{"no cap", Bandwidth{}, true},
		{"128 kbit/s", OfficeHours(8, 18, 128<<10, 0), true},
		{"negative", OfficeHours(8, 18, -1, 0), false},
		{"too slow to send a chunk", OfficeHours(8, 18, 100, 0), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.bw.Validate(); (err == nil) != tc.ok {
				t.Errorf("got %v; want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestLag(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	var lt lagTracker
	lt.seen(100, t0)
	lt.seen(200, t0.Add(time.Second))
	lt.seen(300, t0.Add(2*time.Second))
	steps := []struct {
		durable   uint64
		at        time.Duration
		cur, last time.Duration
	}{
		{0, 3 * time.Second, 3 * time.Second, 0},
		{150, 3 * time.Second, 2 * time.Second, 3 * time.Second},
		{300, 4 * time.Second, 0, 2 * time.Second},
	}
	for _, s := range steps {
		if s.durable > 0 {
			lt.durable(lsn(s.durable), t0.Add(s.at))
		}
		cur, last := lt.lag(t0.Add(s.at))
		if cur != s.cur || last != s.last {
			t.Errorf("durable %d at +%s: got lag %s (last %s); want %s (last %s)", s.durable, s.at, cur, last, s.cur, s.last)
		}
	}
}

func lsn(n uint64) archive.LSN { return archive.LSN(n) }

// WAL sent while no upload runs costs a later upload nothing: the bucket
// refills meanwhile (a night's drain once held the next upload for 20
// minutes at the day's cap). WAL sent while an upload runs still slows
// it: the cap bounds the sum.
func TestThrottleForgetsIdleWAL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		time.Sleep(time.Until(time.Now().UTC().Truncate(24 * time.Hour).Add(9 * time.Hour)))
		th := newThrottle(OfficeHours(7, 19, 96_000, 0), func() time.Time { return time.Now().UTC() }) // 12 kB/s
		upload := func(n int) time.Duration {
			start := time.Now()
			for sent := 0; sent < n; sent += th.chunk() {
				if err := th.wait(context.Background(), min(th.chunk(), n-sent)); err != nil {
					t.Fatal(err)
				}
			}
			return time.Since(start)
		}
		th.spend(1 << 20) // 87 s at the cap
		time.Sleep(time.Hour)
		if got := upload(120_000); got > 10*time.Second {
			t.Errorf("120 kB uploaded an hour after 1 MiB of WAL took %s; want at most 10 s (the cap alone)", got)
		}
		time.Sleep(time.Hour)
		th.spend(120_000)
		if got := upload(120_000); got < 18*time.Second {
			t.Errorf("120 kB uploaded after 120 kB of WAL went out at once took %s; want at least 18 s (the cap bounds the sum)", got)
		}
	})
}
