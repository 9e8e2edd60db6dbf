package panel

import (
	"context"
	"time"
)

// Input is the button's GPIO line, wired between the pin and ground with
// the internal pull-up: pressed reads low.
type Input interface {
	// Pressed reports whether the button is down now.
	Pressed() bool
	// WaitForEdge blocks until the level changes or timeout passes, and
	// reports whether it changed.
	WaitForEdge(timeout time.Duration) bool
}

// debounce is how long a level must hold to count: contacts bounce for a
// few milliseconds.
const debounce = 30 * time.Millisecond

// watchButton turns edges into presses: a press counts once the button has
// been down for the debounce time; on release it is short or long. A long
// press is reported as soon as it is long, without waiting for release,
// and a press held on to ResetPress is reported again as that.
func (p *Panel) watchButton(ctx context.Context) {
	in := p.cfg.Button
	for ctx.Err() == nil {
		if !in.WaitForEdge(time.Second) || !in.Pressed() {
			continue
		}
		// Down: it must stay down for the debounce time.
		if in.WaitForEdge(debounce) && !in.Pressed() {
			continue // a bounce
		}
		if long := p.hold(ctx, in); !long && ctx.Err() == nil {
			p.press(Ack)
		}
	}
}

// hold follows a press from the moment it counts until the button is up
// again for the debounce time or ctx ends, reporting LongPress and
// ResetPress as the press reaches them; it reports whether the press was
// long.
func (p *Panel) hold(ctx context.Context, in Input) (long bool) {
	down := time.Now()
	reset := false
	for ctx.Err() == nil {
		held := time.Since(down)
		if !long && held >= p.cfg.LongPress {
			long = true
			p.press(LongPress)
		}
		if !reset && held >= p.cfg.ResetPress {
			reset = true
			p.press(ResetPress)
		}
		wait := time.Minute
		switch {
		case !long:
			wait = p.cfg.LongPress - held
		case !reset:
			wait = p.cfg.ResetPress - held
		}
		if in.WaitForEdge(wait) && !in.Pressed() {
			// Up: it must stay up for the debounce time.
			if in.WaitForEdge(debounce) && in.Pressed() {
				continue
			}
			return long
		}
	}
	return long
}
