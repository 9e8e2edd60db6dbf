package web

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Each check of a password takes Argon2id's memory (19 MiB on the box)
// and a good part of a second of CPU, so guesses are limited before
// anything is hashed: at most maxHashing checks at once (the rest are
// told to come back at once, never queued), maxFailures tries a minute
// from one address, and allTries a minute from everyone together, since
// a network can lend an attacker many addresses. A try counts when it is
// let through, before the hash; the right password clears its address's
// count. Setup codes are tried the same way.
const (
	maxHashing = 2
	allTries   = 30
)

// tries limits password and setup-code tries.
type tries struct {
	busy chan struct{} // a slot per check in progress
	now  func() time.Time

	mu     sync.Mutex
	window time.Time // start of the current minute of allTries
	count  int       // tries let through in it
}

func newTries(now func() time.Time) *tries {
	return &tries{busy: make(chan struct{}, maxHashing), now: now}
}

// refusal is why a try is not let through: what to tell the person, and
// how many seconds to wait.
type refusal struct {
	why   string
	wait  time.Duration
	audit string
}

// begin lets a try from host through, and returns what ends it, or says
// why not. sessions keeps the count per address.
func (t *tries) begin(host string, ss *sessions) (end func(), no *refusal) {
	select {
	case t.busy <- struct{}{}:
	default:
		return nil, &refusal{"The box is checking other passwords right now. Try again in a moment.", time.Second, "the box was busy checking other passwords"}
	}
	end = func() { <-t.busy }
	if wait := ss.try(host); wait > 0 {
		end()
		return nil, &refusal{"Too many wrong passwords. Wait a minute, then try again.", wait, "too many wrong passwords from this address"}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if now.Sub(t.window) >= time.Minute || now.Before(t.window) {
		t.window, t.count = now, 0
	}
	if t.count >= allTries {
		end()
		return nil, &refusal{"Too many wrong passwords have been tried on this box. Wait a minute, then try again.", t.window.Add(time.Minute).Sub(now), "too many wrong passwords on the box"}
	}
	t.count++
	return end, nil
}

// try counts a try from host before it is checked, or returns how long
// host must wait: after maxFailures tries without the right password, it
// waits out lockout.
func (s *sessions) try(host string) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if len(s.failures) > 4096 { // many addresses: forget the stale ones
		for h, f := range s.failures {
			if now.Sub(f.last) >= lockout {
				delete(s.failures, h)
			}
		}
	}
	f := s.failures[host]
	if f.count >= maxFailures {
		if wait := lockout - now.Sub(f.last); wait > 0 {
			return wait
		}
		f.count = 0 // the lockout has passed: a fresh set of tries
	}
	s.failures[host] = failure{count: f.count + 1, last: now}
	return 0
}

// succeeded clears host's count: the right password or setup code.
func (s *sessions) succeeded(host string) {
	s.mu.Lock()
	delete(s.failures, host)
	s.mu.Unlock()
}

// refuse answers a try that was not let through: 429 with Retry-After.
func (s *Server) refuse(w http.ResponseWriter, q *request, page string, no *refusal) {
	q.refused, q.why = true, no.audit
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(max(no.wait, time.Second).Seconds()))))
	s.form(w, http.StatusTooManyRequests, page, no.why)
}
