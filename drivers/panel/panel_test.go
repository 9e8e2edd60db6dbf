package panel

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/clinicbox/clinicbox/drivers/panel/paneltest"
)

type rig struct {
	p                         *Panel
	green, amber, red, buzzer *paneltest.Pin
	button                    *paneltest.Button
	quiet                     bool
}

func newRig(t *testing.T) *rig {
	r := &rig{green: paneltest.NewPin(), amber: paneltest.NewPin(), red: paneltest.NewPin(), buzzer: paneltest.NewPin(), button: paneltest.NewButton()}
	r.p = New(Config{Green: r.green, Amber: r.amber, Red: r.red, Buzzer: r.buzzer, Button: r.button,
		Quiet: func(time.Time) bool { return r.quiet }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

func cond(name string, sev Severity) Condition {
	return Condition{Name: name, Severity: sev, Since: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)}
}

// Exact on/off timelines of each severity's lights and sound.
func TestTimelines(t *testing.T) {
	for _, tc := range []struct {
		name                      string
		conds                     []Condition
		green, amber, red, buzzer string
	}{
		{"all good", nil, "on@0s", "off@0s", "off@0s", "off@0s"},
		{"busy", []Condition{cond("backing up", Busy)},
			"on@0s off@1s on@2s off@3s", "off@0s", "off@0s", "off@0s"},
		{"attention", []Condition{cond("swap due", Attention)},
			"off@0s", "on@0s", "off@0s", "on@0s off@150ms"},
		{"failure beats attention", []Condition{cond("swap due", Attention), cond("backup failed", Failure)},
			"off@0s", "off@0s", "on@0s off@200ms on@400ms off@600ms on@800ms off@1s on@1.2s off@1.4s on@1.6s off@1.8s on@2s off@2.2s on@2.4s off@2.6s on@2.8s off@3s on@3.2s off@3.4s on@3.6s off@3.8s",
			"on@0s off@150ms on@300ms off@450ms on@600ms off@750ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRig(t)
				r.p.Set(tc.conds)
				time.Sleep(4 * time.Second) // the fake clock: the panel runs its pattern
				synctest.Wait()
				for _, c := range []struct {
					name string
					pin  *paneltest.Pin
					want string
				}{{"green", r.green, tc.green}, {"amber", r.amber, tc.amber}, {"red", r.red, tc.red}, {"buzzer", r.buzzer, tc.buzzer}} {
					if got := c.pin.Timeline(4 * time.Second); got != c.want {
						t.Errorf("%s: got %s; want %s", c.name, got, c.want)
					}
				}
			})
		})
	}
}

// A failure repeats its three beeps every minute until acknowledged; the
// button silences that condition only: the light stays, and a new
// condition sounds again. A condition that clears silences itself.
func TestAcknowledgeCurrentOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		r.p.Set([]Condition{cond("backup failed", Failure)})
		time.Sleep(61 * time.Second)
		synctest.Wait()
		if n := countOn(r.buzzer); n != 6 {
			t.Errorf("after 61 s: %d beeps; want 6 (three now, three a minute later)", n)
		}
		r.button.Press()
		time.Sleep(100 * time.Millisecond)
		r.button.Release()
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		ev := <-r.p.Events()
		if ev.Kind != Ack || ev.Condition != "backup failed" {
			t.Errorf("event %+v; want an acknowledgement of the failure", ev)
		}
		before := countOn(r.buzzer)
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if n := countOn(r.buzzer); n != before || r.buzzer.On() {
			t.Errorf("acknowledged failure still beeps: %d beeps, was %d", n, before)
		}
		if st := r.p.State(); st.Red != "fast" || st.Buzzer != "silent" {
			t.Errorf("state %+v; want red fast, silent", st)
		}
		second := cond("wal stream stopped", Failure)
		second.Since = second.Since.Add(time.Hour)
		r.p.Set([]Condition{second})
		time.Sleep(time.Second)
		synctest.Wait()
		if n := countOn(r.buzzer); n != before+3 {
			t.Errorf("a new failure: %d beeps; want %d", n, before+3)
		}
		r.p.Set(nil)
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if r.buzzer.On() || r.red.On() || !r.green.On() {
			t.Errorf("cleared: buzzer %v red %v green %v; want green only", r.buzzer.On(), r.red.On(), r.green.On())
		}
	})
}

// A condition acknowledged, cleared, and shown again sounds again: the
// panel forgets acknowledgements of what it no longer shows.
func TestAcknowledgedThenClearedSoundsAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		failed := cond("backup failed", Failure)
		r.p.Set([]Condition{failed})
		synctest.Wait()
		r.button.Press()
		time.Sleep(100 * time.Millisecond)
		r.button.Release()
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		<-r.p.Events()
		r.p.Set(nil)
		time.Sleep(time.Minute)
		synctest.Wait()
		before := countOn(r.buzzer)
		r.p.Set([]Condition{failed})
		time.Sleep(time.Second)
		synctest.Wait()
		if n := countOn(r.buzzer); n != before+3 {
			t.Errorf("the failure back after it cleared: %d beeps; want %d", n-before, 3)
		}
	})
}

func countOn(p *paneltest.Pin) int {
	n := 0
	for _, c := range p.Changes() {
		if c.On {
			n++
		}
	}
	return n
}

// Quiet hours keep the buzzer silent; lights still show, and red too.
func TestQuietHours(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		r.quiet = true
		r.p.Set([]Condition{cond("backup failed", Failure)})
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if countOn(r.buzzer) != 0 || countOn(r.red) == 0 {
			t.Errorf("quiet hours: %d beeps, red on %d times; want silence and red", countOn(r.buzzer), countOn(r.red))
		}
		if st := r.p.State(); st.Buzzer != "quiet hours" {
			t.Errorf("state buzzer %q; want quiet hours", st.Buzzer)
		}
	})
}

// A bouncy press is one press; holding the button three seconds is a long
// press, reported while it is still held.
func TestButtonDebounceAndLongPress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		r.p.Set([]Condition{cond("swap due", Attention)})
		// Contact bounce: down, up after 5 ms, down again, held 200 ms.
		r.button.Press()
		time.Sleep(5 * time.Millisecond)
		r.button.Release()
		time.Sleep(2 * time.Millisecond)
		r.button.Press()
		time.Sleep(200 * time.Millisecond)
		r.button.Release()
		time.Sleep(time.Second)
		synctest.Wait()
		if got := drain(r.p.Events()); len(got) != 1 || got[0].Kind != Ack {
			t.Errorf("bouncy press gave %v; want one acknowledgement", got)
		}
		r.button.Press()
		time.Sleep(3100 * time.Millisecond)
		synctest.Wait()
		if got := drain(r.p.Events()); len(got) != 1 || got[0].Kind != LongPress {
			t.Errorf("held 3.1 s: %v; want one long press before release", got)
		}
		r.button.Release()
		time.Sleep(time.Second)
		synctest.Wait()
		if got := drain(r.p.Events()); len(got) != 0 {
			t.Errorf("releasing a long press gave %v; want nothing more", got)
		}
		// Held on for ten seconds: a long press, then the password reset,
		// each once.
		r.button.Press()
		time.Sleep(9900 * time.Millisecond)
		synctest.Wait()
		if got := drain(r.p.Events()); len(got) != 1 || got[0].Kind != LongPress {
			t.Errorf("held 9.9 s: %v; want only the long press so far", got)
		}
		time.Sleep(200 * time.Millisecond)
		synctest.Wait()
		if got := drain(r.p.Events()); len(got) != 1 || got[0].Kind != ResetPress {
			t.Errorf("held 10.1 s: %v; want the reset press", got)
		}
		time.Sleep(20 * time.Second)
		r.button.Release()
		time.Sleep(time.Second)
		synctest.Wait()
		if got := drain(r.p.Events()); len(got) != 0 {
			t.Errorf("held 30 s and released: %v; want nothing more", got)
		}
	})
}

func drain(c <-chan Event) []Event {
	var out []Event
	for {
		select {
		case e := <-c:
			out = append(out, e)
		default:
			return out
		}
	}
}

func TestCodePattern(t *testing.T) {
	p := Code(3)
	var got []bool
	for e := time.Duration(0); e < p.Cycle+600*time.Millisecond; e += 300 * time.Millisecond {
		on, _ := p.at(e)
		got = append(got, on)
	}
	// Three 300 ms blinks, a pause, and again after 3.8 s.
	want := []bool{true, false, true, false, true, false, false, false, false, false, false, false, false, true, false}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("code 3 at step %d: got %v; want %v", i, got, want)
		}
	}
	if p.String() != "code 3" {
		t.Errorf("got %q", p.String())
	}
}
