package fault

import (
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// stopT records a wait's failure and stops the wait, as t.Fatalf would.
type stopT struct {
	testing.TB
	msg string
}

type stopped struct{}

func (s *stopT) Helper() {}
func (s *stopT) Fatalf(format string, args ...any) {
	s.msg = fmt.Sprintf(format, args...)
	panic(stopped{})
}

// wait runs waitUntil and returns its failure, "" when it returned.
func (s *stopT) wait(stall time.Duration, cond func() bool, progress ...func() string) (msg string) {
	defer func() {
		if r := recover(); r != nil && r != (stopped{}) {
			panic(r)
		}
		msg = s.msg
	}()
	waitUntil(s, "the thing", stall, cond, progress...)
	return ""
}

// A wait goes on for as long as progress moves, however long that is, and
// fails once progress has stood still for the stall limit; without
// progress, the limit bounds the whole wait.
func TestWaitUntilFollowsProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		// Slow work: a step every 40 s, done after 10 minutes.
		step := func() string { return fmt.Sprint(int(time.Since(start) / (40 * time.Second))) }
		done := func() bool { return time.Since(start) > 10*time.Minute }
		if msg := (&stopT{TB: t}).wait(time.Minute, done, step); msg != "" {
			t.Errorf("slow but moving: failed with %q; want it to wait", msg)
		}
		// Stuck after 3 minutes: fails a minute later, not at the end.
		start = time.Now()
		stuck := func() string { return fmt.Sprint(min(3, int(time.Since(start)/time.Minute))) }
		msg := (&stopT{TB: t}).wait(time.Minute, func() bool { return false }, stuck)
		if took := time.Since(start); !strings.Contains(msg, "nothing moved for 1m0s") || took > 4*time.Minute+time.Second {
			t.Errorf("stuck: failed after %s with %q; want a failure a minute after the last progress", took, msg)
		}
		start = time.Now()
		if msg := (&stopT{TB: t}).wait(time.Minute, func() bool { return false }); msg == "" || time.Since(start) > time.Minute+time.Second {
			t.Errorf("no progress given: failed after %s with %q; want a failure after the limit", time.Since(start), msg)
		}
	})
}
