package web

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/clinicbox/clinicbox/appliance/audit"
)

// TestNoiseSummaryAtMinuteEnd: the summary is written when the minute
// ends, with no further request to bring it.
func TestNoiseSummaryAtMinuteEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var got []audit.Record
		n := &noise{now: time.Now}
		n.flush = func() { mu.Lock(); got = append(got, n.due()...); mu.Unlock() }
		full := 0
		for range 10 {
			if n.admit("lan:192.168.1.66") {
				full++
			}
		}
		if full != noisePerSource {
			t.Errorf("got %d recorded in full; want %d", full, noisePerSource)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 1 || got[0].Why != "7 more refused requests from lan:192.168.1.66 in the last minute" {
			t.Errorf("got %+v; want one summary of 7 more from lan:192.168.1.66", got)
		}
	})
}

// TestNoiseSustained: an hour of 100 refused requests a minute from each
// of 50 addresses writes at most the hour's budget in full and three
// summaries a minute.
func TestNoiseSustained(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := &noise{now: time.Now}
		full, summaries := 0, 0
		for range 60 {
			for i := range 5000 {
				if n.admit(fmt.Sprintf("lan:10.0.0.%d", i%50)) {
					full++
				}
			}
			time.Sleep(time.Minute)
			for _, r := range n.due() {
				if !strings.Contains(r.Why, "more refused requests") {
					t.Errorf("got summary %q", r.Why)
				}
				summaries++
			}
		}
		if full > noisePerHour || summaries > 3*60 {
			t.Errorf("got %d records in full and %d summaries in an hour; want at most %d and %d", full, summaries, noisePerHour, 3*60)
		}
	})
}
