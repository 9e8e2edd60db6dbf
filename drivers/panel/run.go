package panel

import (
	"context"
	"fmt"
	"time"
)

// outputNames name Run's outputs in order, for errors.
var outputNames = [...]string{"green", "amber", "red", "buzzer"}

// Run drives the outputs and reads the button until ctx ends, then turns
// everything off.
func (p *Panel) Run(ctx context.Context) error {
	if p.cfg.Button != nil {
		done := make(chan struct{})
		go func() { defer close(done); p.watchButton(ctx) }()
		defer func() { <-done }() // it looks at ctx at least every second
	}
	o := &outputs{p: p, outs: [4]Output{p.cfg.Green, p.cfg.Amber, p.cfg.Red, p.cfg.Buzzer}}
	defer o.off()
	// Nothing is shown before the appliance says what to show.
	if !p.waitFirstSet(ctx) {
		return nil
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		next := o.show(time.Now())
		// Quiet hours end without a Set: look again at least every minute.
		if !p.sleep(ctx, timer, min(next, time.Minute)) {
			return nil
		}
	}
}

// waitFirstSet waits for the appliance's first Set; it reports false when
// ctx ends first.
func (p *Panel) waitFirstSet(ctx context.Context) bool {
	p.mu.Lock()
	started := p.any
	p.mu.Unlock()
	if started {
		return true
	}
	select {
	case <-ctx.Done():
		return false
	case <-p.wake:
		return true
	}
}

// sleep waits for d to pass, for a Set, or for ctx to end; it reports
// false when ctx ended.
func (p *Panel) sleep(ctx context.Context, timer *time.Timer, d time.Duration) bool {
	timer.Reset(d)
	select {
	case <-ctx.Done():
		return false
	case <-p.wake:
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	case <-timer.C:
	}
	return true
}

// outputs are the lights and the buzzer (in outputNames' order, nil when
// not wired) with what each was last set to, so that each is switched only
// when its level changes and a failing one is reported once.
type outputs struct {
	p      *Panel
	outs   [4]Output
	last   [4]int // 0 unknown, 1 off, 2 on
	failed [4]bool
}

// show sets each output as its pattern says at now, and returns how long
// until one of them changes.
func (o *outputs) show(now time.Time) time.Duration {
	o.p.mu.Lock()
	e := now.Sub(o.p.since)
	o.p.mu.Unlock()
	g, a, r, b, _ := o.p.patterns(now)
	next := forever
	for i, pat := range []Pattern{g, a, r, b} {
		on, d := pat.at(e)
		next = min(next, d)
		o.set(i, on)
	}
	return next
}

func (o *outputs) set(i int, on bool) {
	want := 1
	if on {
		want = 2
	}
	if o.outs[i] == nil || o.last[i] == want {
		return
	}
	o.last[i] = want
	if err := o.outs[i].Set(on); err != nil && !o.failed[i] && o.p.cfg.OnError != nil {
		o.failed[i] = true
		o.p.cfg.OnError(fmt.Errorf("panel: switch %s: %w", outputNames[i], err))
	}
}

// off turns every output off.
func (o *outputs) off() {
	for _, out := range o.outs {
		if out != nil {
			out.Set(false)
		}
	}
}
