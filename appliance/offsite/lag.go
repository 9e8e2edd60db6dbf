package offsite

import (
	"sync"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
)

// lagTracker measures how long WAL takes from the server to durable at the
// vault. It keeps facts "the server had written WAL up to lsn by time t",
// learned from two sources: WAL arriving on the stream (within
// milliseconds of the commit while streaming keeps up) and periodic polls
// of the server's current position (which keep counting while the link or
// the vault is down, when no WAL arrives). All times are the box's clock.
//
// The lag now is the age of the oldest fact not yet durable at the vault:
// a lower bound on the age of the oldest commit not yet offsite, tight to
// the arrival of WAL while streaming and to the poll interval otherwise.
type lagTracker struct {
	mu    sync.Mutex
	facts []lagFact // ascending in lsn and time
	// last is the lag of the most recent acknowledgement.
	last time.Duration
}

type lagFact struct {
	lsn archive.LSN
	at  time.Time
}

// merge is the resolution: facts closer together than this are merged,
// keeping the earlier time, which bounds memory and errs towards more lag.
const merge = 20 * time.Millisecond

// maxFacts bounds memory during a long outage; beyond it, facts are
// merged pairwise (again erring towards more lag).
const maxFacts = 4096

func (t *lagTracker) seen(lsn archive.LSN, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(t.facts)
	switch {
	case n > 0 && lsn <= t.facts[n-1].lsn:
		return
	case n > 0 && at.Sub(t.facts[n-1].at) < merge:
		t.facts[n-1].lsn = lsn
		return
	}
	t.facts = append(t.facts, lagFact{lsn, at})
	if len(t.facts) > maxFacts {
		out := t.facts[:0]
		for i := 0; i < len(t.facts); i += 2 {
			f := t.facts[i]
			if i+1 < len(t.facts) {
				f.lsn = t.facts[i+1].lsn
			}
			out = append(out, f)
		}
		t.facts = out
	}
}

// durable records that the vault holds WAL up to lsn as of at.
func (t *lagTracker) durable(lsn archive.LSN, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	i := 0
	for i < len(t.facts) && t.facts[i].lsn <= lsn {
		i++
	}
	if i > 0 {
		t.last = at.Sub(t.facts[i-1].at)
		t.facts = append(t.facts[:0], t.facts[i:]...)
	}
}

// lag returns the current lag (zero when the vault holds all WAL the box
// knows of) and the lag of the latest acknowledgement.
func (t *lagTracker) lag(now time.Time) (current, last time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.facts) > 0 {
		current = now.Sub(t.facts[0].at)
	}
	return current, t.last
}
