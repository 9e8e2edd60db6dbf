package status

import (
	"sync"
	"time"
)

// History keeps lag samples for the charts: every sample of the last day
// at one-minute resolution, and a week at ten-minute resolution. Memory is
// bounded (about 2,500 samples) however long the box runs.
type History struct {
	mu     sync.Mutex
	recent []Sample // last day, one per minute at most
	older  []Sample // the week before that, one per ten minutes at most
}

const (
	recentSpan = 24 * time.Hour
	olderSpan  = 7 * 24 * time.Hour
	recentStep = time.Minute
	olderStep  = 10 * time.Minute
)

// Add records a sample. A sample in the same minute as the previous one
// replaces it, so a fast caller does not grow the history.
func (h *History) Add(s Sample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n := len(h.recent); n > 0 && s.Time.Truncate(recentStep).Equal(h.recent[n-1].Time.Truncate(recentStep)) {
		h.recent[n-1] = s
	} else {
		h.recent = append(h.recent, s)
	}
	cut := 0
	for cut < len(h.recent) && s.Time.Sub(h.recent[cut].Time) > recentSpan {
		old := h.recent[cut]
		if n := len(h.older); n == 0 || !old.Time.Truncate(olderStep).Equal(h.older[n-1].Time.Truncate(olderStep)) {
			h.older = append(h.older, old)
		}
		cut++
	}
	h.recent = append(h.recent[:0], h.recent[cut:]...)
	cut = 0
	for cut < len(h.older) && s.Time.Sub(h.older[cut].Time) > olderSpan {
		cut++
	}
	h.older = append(h.older[:0], h.older[cut:]...)
}

// Since returns the samples at or after t, oldest first.
func (h *History) Since(t time.Time) []Sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Sample
	for _, part := range [][]Sample{h.older, h.recent} {
		for _, s := range part {
			if !s.Time.Before(t) {
				out = append(out, s)
			}
		}
	}
	return out
}
