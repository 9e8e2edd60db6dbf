// Package panel drives the box's front panel (box step of the data path):
// three status lights (green, amber, red), an active buzzer and an
// acknowledge button, on GPIO lines through the kernel's character device
// (so a Pi 5 works), or the Pi's own LEDs when nothing is wired.
package panel

import (
	"maps"
	"slices"
	"sync"
	"time"
)

// Output is a light or the buzzer: on or off.
type Output interface {
	Set(on bool) error
}

// Config wires a panel. Nil outputs are not wired.
type Config struct {
	Green, Amber, Red, Buzzer Output
	// Button is the acknowledge button; nil when not wired.
	Button Input
	// Quiet reports whether the buzzer must stay silent now (quiet hours).
	Quiet func(time.Time) bool
	// LongPress is how long a press must last to count as long; zero
	// means 3 s.
	LongPress time.Duration
	// ResetPress is how long the button must be held to reset the box's
	// page password (someone at the box, in person); zero means 10 s.
	ResetPress time.Duration
	// Chip names the GPIO chip the lines are on, for the log; empty when
	// the panel is not on GPIO.
	Chip string
	// OnError is called, from Run, with the first error of each output
	// that fails to switch (a light or the buzzer that shows nothing);
	// nil ignores them.
	OnError func(error)
}

// EventKind is what the button did.
type EventKind int

// Button events.
const (
	Ack        EventKind = iota + 1 // a short press
	LongPress                       // held for Config.LongPress
	ResetPress                      // still held at Config.ResetPress (after a LongPress)
)

// Event is a button press, with the condition shown when it happened.
type Event struct {
	Kind      EventKind
	Condition string
}

// Panel is the front panel. Set and State may be called from any
// goroutine; Run drives the outputs.
type Panel struct {
	cfg    Config
	events chan Event
	wake   chan struct{}

	mu    sync.Mutex
	top   Condition       // the condition shown; zero Name when all good
	since time.Time       // when the shown pattern began
	acked map[string]bool // conditions acknowledged on the panel
	any   bool            // Set has been called
}

// New makes a panel.
func New(cfg Config) *Panel {
	if cfg.LongPress <= 0 {
		cfg.LongPress = 3 * time.Second
	}
	if cfg.ResetPress <= cfg.LongPress {
		cfg.ResetPress = max(10*time.Second, 2*cfg.LongPress)
	}
	return &Panel{cfg: cfg, events: make(chan Event, 8), wake: make(chan struct{}, 1), acked: map[string]bool{}}
}

// Events are the button's presses.
func (p *Panel) Events() <-chan Event { return p.events }

func key(c Condition) string { return c.Name + "|" + c.Drive + "|" + c.Since.String() }

// Set replaces the conditions shown; the most severe (the first of equal
// severity) wins.
func (p *Panel) Set(conds []Condition) {
	var top Condition
	for _, c := range conds {
		if c.Severity > top.Severity || top.Name == "" && c.Severity > Good {
			top = c
		}
	}
	p.mu.Lock()
	changed := key(top) != key(p.top) || !p.any
	if changed {
		p.top, p.since, p.any = top, time.Now(), true
	}
	if top.Acknowledged {
		p.acked[key(top)] = true
	}
	// Forget acknowledgements of conditions no longer shown: one that
	// comes back is a new occurrence (a new Since) and must sound again.
	maps.DeleteFunc(p.acked, func(k string, _ bool) bool {
		return !slices.ContainsFunc(conds, func(c Condition) bool { return key(c) == k })
	})
	p.mu.Unlock()
	if changed {
		p.poke()
	}
}

func (p *Panel) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// patterns returns what each output shows now.
func (p *Panel) patterns(now time.Time) (green, amber, red, buzzer Pattern, quiet bool) {
	p.mu.Lock()
	top, acked := p.top, p.acked[key(p.top)]
	p.mu.Unlock()
	quiet = p.cfg.Quiet != nil && p.cfg.Quiet(now)
	switch top.Severity {
	case Good:
		green = Steady
	case Busy:
		green = Slow
	case Attention:
		amber, buzzer = Steady, OneBeep
	case Failure:
		red, buzzer = Fast, ThreeBeeps
	}
	if acked || quiet {
		buzzer = Off
	}
	return
}

// State says what the panel shows, for the web page's mirror.
func (p *Panel) State() State {
	g, a, r, b, quiet := p.patterns(time.Now())
	st := State{Green: g.String(), Amber: a.String(), Red: r.String(), Buzzer: "silent"}
	switch {
	case b != Off:
		st.Buzzer = b.String()
	case quiet && (a != Off || r != Off):
		st.Buzzer = "quiet hours"
	}
	p.mu.Lock()
	st.Condition = p.top.Name
	p.mu.Unlock()
	return st
}

// acknowledge silences the condition shown now and reports the press.
func (p *Panel) press(kind EventKind) {
	p.mu.Lock()
	top := p.top
	if kind == Ack && top.Name != "" {
		p.acked[key(top)] = true
	}
	p.mu.Unlock()
	p.poke()
	select {
	case p.events <- Event{Kind: kind, Condition: top.Name}:
	default: // nobody listening: the press still silenced the panel
	}
}
