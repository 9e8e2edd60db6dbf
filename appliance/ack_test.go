package appliance

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
)

// flakyNotifier's health is set by the test.
type flakyNotifier struct {
	mu  sync.Mutex
	err error
}

func (n *flakyNotifier) Update(time.Time, status.Status) {}

func (n *flakyNotifier) Health() error { n.mu.Lock(); defer n.mu.Unlock(); return n.err }

func (n *flakyNotifier) set(err error) { n.mu.Lock(); n.err = err; n.mu.Unlock() }

func condition(st status.Status, name string) (status.Condition, bool) {
	for _, c := range st.Conditions {
		if c.Name == name {
			return c, true
		}
	}
	return status.Condition{}, false
}

// A condition acknowledged with the button, cleared, and back again sounds
// again and shows unacknowledged: acknowledging one occurrence never
// silences the next.
func TestAcknowledgedConditionThatReturnsSoundsAgain(t *testing.T) {
	n := &flakyNotifier{}
	r := newRig(t, time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC), func(c *Config) { c.Notifier = n })
	const name = "alerts failing"
	fail := func() {
		n.set(errors.New("smtp: connection refused"))
		r.a.Poke()
		r.wait(name+" shown", func(st status.Status) bool { _, ok := condition(st, name); return ok })
	}
	// Acknowledge everything shown (the button acknowledges one at a time).
	ackAll := func() status.Status {
		for {
			st := r.a.Status()
			i := slices.IndexFunc(st.Conditions, func(c status.Condition) bool { return c.Severity >= status.Attention && !c.Acknowledged })
			if i < 0 {
				return st
			}
			r.button <- Ack
			r.wait(st.Conditions[i].Name+" acknowledged", func(now status.Status) bool {
				c, ok := condition(now, st.Conditions[i].Name)
				return !ok || c.Acknowledged
			})
		}
	}
	fail()
	if st := ackAll(); st.Panel.Buzzer != "silent" {
		t.Fatalf("after acknowledging everything: buzzer %q; want silent", st.Panel.Buzzer)
	}
	n.set(nil)
	r.a.Poke()
	r.wait(name+" cleared", func(st status.Status) bool { _, ok := condition(st, name); return !ok })
	fail()
	st := r.a.Status()
	if c, _ := condition(st, name); c.Acknowledged {
		t.Errorf("%s after it cleared and came back: acknowledged; want a new, unacknowledged condition", name)
	}
	if st.Panel.Buzzer == "silent" || st.Conditions[0].Name != name {
		t.Errorf("panel: buzzer %q for %q; want it sounding for %q", st.Panel.Buzzer, st.Conditions[0].Name, name)
	}
}
