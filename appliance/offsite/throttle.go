package offsite

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Bandwidth caps base backup uploads by hour of the day, in the box's
// local time, so that a slow clinic link is not saturated during office
// hours. WAL is not capped: it is small, and a cap would only add lag; but
// what it sends counts against the cap, which base uploads then wait for
// (the cap bounds the sum).
type Bandwidth struct {
	// BitsPerSecond per hour of day (0 = midnight to 1 am); 0 means no cap.
	BitsPerSecond [24]int64 `json:"bits_per_second"`
}

// OfficeHours caps uploads at office bits/s from hour from to hour to
// (e.g. 7 to 19) and at night bits/s otherwise; 0 means no cap.
func OfficeHours(from, to int, office, night int64) Bandwidth {
	var b Bandwidth
	for h := range b.BitsPerSecond {
		b.BitsPerSecond[h] = night
		if h >= from && h < to {
			b.BitsPerSecond[h] = office
		}
	}
	return b
}

// Validate says which hour is wrong.
func (b Bandwidth) Validate() error {
	for h, v := range b.BitsPerSecond {
		if v < 0 || (v > 0 && v < 8*1024) {
			return fmt.Errorf("offsite: bandwidth at %02d:00 is %d bit/s; use 0 (no cap) or at least 8192 bit/s", h, v)
		}
	}
	return nil
}

// throttle paces uploads with a token bucket whose rate follows the hour.
// WAL takes its bytes from the same bucket without waiting, so that the
// next base upload chunks wait for them; the bucket refills while nothing
// is sent, so WAL sent while no upload ran (a night's drain, a day's
// streaming) costs an upload that starts later nothing.
type throttle struct {
	bw  Bandwidth
	now func() time.Time // the box's clock, which picks the hour's cap
	lim *rate.Limiter    // refills by the time that passes

	mu  sync.Mutex
	bps int64 // the rate lim is set to
}

// spend counts n bytes of WAL against the cap: the base upload chunks
// sent while the bucket refills after them wait.
func (t *throttle) spend(n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.setRate() == 0 {
		return
	}
	now := time.Now()
	for burst := t.lim.Burst(); n > 0; n -= burst {
		t.lim.ReserveN(now, min(n, burst))
	}
}

func newThrottle(bw Bandwidth, now func() time.Time) *throttle {
	return &throttle{bw: bw, now: now, lim: rate.NewLimiter(rate.Inf, 0), bps: -1}
}

// setRate sets the bucket to the hour's cap and returns it; t.mu is held.
func (t *throttle) setRate() int64 {
	bps := t.bw.BitsPerSecond[t.now().Hour()]
	if bps != t.bps {
		t.bps = bps
		if bps == 0 {
			t.lim.SetLimit(rate.Inf)
		} else {
			// The bucket holds one chunk: a burst never exceeds about a
			// second of the cap.
			t.lim.SetLimit(rate.Limit(bps / 8))
			t.lim.SetBurst(t.chunk())
		}
	}
	return bps
}

// chunk is how many bytes to send at a time under the current cap: about
// a second's worth, between 4 KB and 1 MB, so that a cap change or a
// cancelled upload takes effect promptly.
func (t *throttle) chunk() int {
	bps := t.bw.BitsPerSecond[t.now().Hour()]
	if bps == 0 {
		return 1 << 20
	}
	return min(max(int(bps/8), 4<<10), 1<<20)
}

// recordOverhead is what one WAL record costs on the wire besides its WAL:
// its length, age header and the box's seal (370 bytes with one
// recipient) and the HTTP request and the vault's answer (about 270).
const recordOverhead = 640

// recordGap is the least time between two WAL records under the current
// cap: long enough that the records' own overhead takes at most a
// twentieth of the cap (1.1 s at 96 kbit/s), none without a cap. On a
// slow uplink sending a record every flush interval (200 ms) spent a
// third of 128 kbit/s on record overhead alone.
func (t *throttle) recordGap() time.Duration {
	bps := t.bw.BitsPerSecond[t.now().Hour()]
	if bps == 0 {
		return 0
	}
	return time.Duration(20 * recordOverhead * 8 * int64(time.Second) / bps)
}

// wait blocks until n bytes may be sent. n must not exceed chunk().
func (t *throttle) wait(ctx context.Context, n int) error {
	t.mu.Lock()
	if t.setRate() == 0 {
		t.mu.Unlock()
		return nil
	}
	r := t.lim.ReserveN(time.Now(), min(n, t.lim.Burst()))
	t.mu.Unlock()
	d := r.Delay()
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		r.Cancel()
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
