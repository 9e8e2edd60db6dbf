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
	outs := []Output{p.cfg.Green, p.cfg.Amber, p.cfg.Red, p.cfg.Buzzer}
	last := make([]int, len(outs)) // 0 unknown, 1 off, 2 on
	failed := make([]bool, len(outs))
	defer func() {
		for _, o := range outs {
			if o != nil {
				o.Set(false)
			}
		}
	}()
	// Nothing is shown before the appliance says what to show.
	p.mu.Lock()
	started := p.any
	p.mu.Unlock()
	if !started {
		select {
		case <-ctx.Done():
			return nil
		case <-p.wake:
		}
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		now := time.Now()
		p.mu.Lock()
		e := now.Sub(p.since)
		p.mu.Unlock()
		g, a, r, b, _ := p.patterns(now)
		next := forever
		for i, pat := range []Pattern{g, a, r, b} {
			on, d := pat.at(e)
			next = min(next, d)
			if outs[i] == nil {
				continue
			}
			want := 1
			if on {
				want = 2
			}
			if last[i] != want {
				if err := outs[i].Set(on); err != nil && !failed[i] && p.cfg.OnError != nil {
					failed[i] = true
					p.cfg.OnError(fmt.Errorf("panel: switch %s: %w", outputNames[i], err))
				}
				last[i] = want
			}
		}
		// Quiet hours end without a Set: look again at least every minute.
		next = min(next, time.Minute)
		timer.Reset(next)
		select {
		case <-ctx.Done():
			return nil
		case <-p.wake:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		case <-timer.C:
		}
	}
}
