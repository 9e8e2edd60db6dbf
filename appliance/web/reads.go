package web

import (
	"fmt"
	"sync"
	"time"
)

// The box's page asks for /api/status every two seconds, and for itself
// when something changed: recorded one by one, an open tab would write
// 43,000 audit records a day and push out the ones that matter. These
// reads show nothing of patients, so each signed-in caller's repeats of
// one of them within readWindow are counted, and the next record of it
// says how many there were. Every other request, and every refusal, is
// recorded in full.
const readWindow = 10 * time.Minute

// polledReads are the GETs the page repeats by itself.
var polledReads = map[string]bool{
	"GET /": true, "GET /api/status": true, "GET /api/history": true,
	"GET /api/session": true, "GET /metrics": true,
}

// reads counts repeated polled reads per caller and action.
type reads struct {
	mu   sync.Mutex
	seen map[string]*readCount
}

type readCount struct {
	recorded time.Time // when the last record of it was written
	more     int       // not recorded since
}

// admit reports whether a polled read is recorded, and if it is, the
// note that says how many were counted since the last record.
func (rs *reads) admit(key string, now time.Time) (bool, string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.seen == nil {
		rs.seen = map[string]*readCount{}
	}
	c := rs.seen[key]
	if c != nil && now.Sub(c.recorded) < readWindow && !now.Before(c.recorded) {
		c.more++
		return false, ""
	}
	var note string
	if c != nil && c.more > 0 {
		note = fmt.Sprintf("and %d more since %s, counted rather than recorded one by one", c.more, c.recorded.UTC().Format(time.RFC3339))
	}
	rs.prune(now)
	rs.seen[key] = &readCount{recorded: now}
	return true, note
}

// prune forgets callers whose last record is older than the window and
// who have nothing counted: the map holds at most the callers of the last
// window.
func (rs *reads) prune(now time.Time) {
	for k, c := range rs.seen {
		if now.Sub(c.recorded) >= readWindow && c.more == 0 {
			delete(rs.seen, k)
		}
	}
}
