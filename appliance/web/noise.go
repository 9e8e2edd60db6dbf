package web

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/clinicbox/clinicbox/appliance/audit"
)

// Requests that nobody signed in made and that were refused cost an
// attacker nothing, and would push the records that matter (the password
// set, sign-ins, actions) out of the audit log's bounded history. So the
// log takes at most noisePerSource of them a minute from one source and
// noisePerHour an hour from all, and each minute with more ends with a
// summary ("N more refused requests from X in the last minute") for the
// noisiest sources and one for the rest. A sustained flood from any number
// of addresses thus writes at most about 4 records a minute. Password and
// setup-code tries are never summarized: their own limits keep them few.
const (
	noisePerSource = 3
	noisePerHour   = 60
	noiseSummaries = 2     // sources summarized by name each minute
	noiseSources   = 10000 // sources told apart in a minute; later ones are "others"
)

// noise counts refused anonymous requests per source.
type noise struct {
	now func() time.Time
	// flush writes the summaries due; called by a timer at a minute's
	// end.
	flush func()

	mu     sync.Mutex
	minute time.Time
	hour   time.Time
	inHour int                    // recorded in full this hour
	seen   map[string]*noiseCount // by source, this minute
	timer  bool                   // a flush is set for this minute's end
}

type noiseCount struct{ recorded, dropped int }

// admit reports whether a refused request from source is recorded in
// full; if not, it is counted for the minute's summary.
func (n *noise) admit(source string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.now()
	if n.seen == nil || now.Sub(n.minute) >= time.Minute || now.Before(n.minute) {
		return n.startMinute(now, source) // due summaries were taken first
	}
	if now.Sub(n.hour) >= time.Hour || now.Before(n.hour) {
		n.hour, n.inHour = now, 0
	}
	c := n.seen[source]
	if c == nil {
		if len(n.seen) >= noiseSources {
			source = "others"
		}
		c = &noiseCount{}
		n.seen[source] = c
	}
	if c.recorded < noisePerSource && n.inHour < noisePerHour {
		c.recorded++
		n.inHour++
		return true
	}
	c.dropped++
	if !n.timer && n.flush != nil {
		n.timer = true
		time.AfterFunc(n.minute.Add(time.Minute).Sub(now), n.flush)
	}
	return false
}

// startMinute begins a minute with source's request, recorded in full
// unless the hour's budget is spent.
func (n *noise) startMinute(now time.Time, source string) bool {
	n.minute, n.seen, n.timer = now, map[string]*noiseCount{}, false
	if now.Sub(n.hour) >= time.Hour || now.Before(n.hour) {
		n.hour, n.inHour = now, 0
	}
	c := &noiseCount{}
	n.seen[source] = c
	if n.inHour < noisePerHour {
		c.recorded, n.inHour = 1, n.inHour+1
		return true
	}
	c.dropped = 1
	return false
}

// due returns the summaries of a minute that is over, once.
func (n *noise) due() []audit.Record {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.now()
	if n.seen == nil || now.Sub(n.minute) < time.Minute && !now.Before(n.minute) {
		return nil
	}
	var loud []string
	for src, c := range n.seen {
		if c.dropped > 0 {
			loud = append(loud, src)
		}
	}
	slices.SortFunc(loud, func(a, b string) int { return cmp.Or(n.seen[b].dropped-n.seen[a].dropped, cmp.Compare(a, b)) })
	var out []audit.Record
	rest, others := 0, 0
	for i, src := range loud {
		if i < noiseSummaries {
			out = append(out, summary(now, src, n.seen[src].dropped, fmt.Sprintf("from %s", src)))
			continue
		}
		rest, others = rest+n.seen[src].dropped, others+1
	}
	if rest > 0 {
		out = append(out, summary(now, "various", rest, fmt.Sprintf("from %d other sources", others)))
	}
	n.seen = nil
	return out
}

func summary(now time.Time, caller string, dropped int, from string) audit.Record {
	return audit.Record{Time: now, Caller: caller, Action: "refused requests", Allowed: false,
		Why: fmt.Sprintf("%d more refused requests %s in the last minute", dropped, from)}
}

// flushNoise writes the summaries of a minute that is over.
func (s *Server) flushNoise() {
	for _, r := range s.noise.due() {
		if _, err := s.cfg.Audit.Append(r); err != nil {
			s.log.Error("audit", "op", r.Action, "err", err)
		}
	}
}
