package alert

import (
	"context"
	"errors"
	"slices"
	"time"
)

// Run delivers queued messages until ctx ends, retrying failed ones with
// growing pauses (1, 2, 4 ... 30 minutes) for a day. It uses the real
// clock (the fake one under testing/synctest).
func (n *Notifier) Run(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := n.deliverDue(ctx)
		var wake <-chan time.Time
		if !next.IsZero() {
			timer.Reset(time.Until(next))
			wake = timer.C
		}
		select {
		case <-ctx.Done():
			return nil
		case <-n.kick:
		case <-wake:
		}
	}
}

// deliverDue sends every message whose time has come and returns when the
// next retry is due (zero when nothing waits).
func (n *Notifier) deliverDue(ctx context.Context) time.Time {
	now := time.Now()
	n.mu.Lock()
	var due, stale []*delivery
	for _, d := range n.st.Outbox {
		if d.FirstTry.IsZero() {
			d.FirstTry = now
		}
		switch {
		case now.Sub(d.FirstTry) > giveUpAfter:
			stale = append(stale, d)
		case !d.NextTry.After(now):
			due = append(due, d)
		}
	}
	for _, d := range stale {
		n.log.Error("alert given up", "op", "alert", "kind", d.Msg.Kind, "condition", d.Msg.Condition, "pending", d.Pending)
		d.Pending = nil
		n.st.Dropped++
		n.finish(d)
	}
	n.mu.Unlock()
	for _, d := range due {
		for _, t := range n.targets {
			if ctx.Err() != nil {
				break
			}
			if slices.Contains(n.pending(d), t.name()) {
				n.record(d, t.name(), t.send(ctx, d.Msg), now)
			}
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.save()
	var next time.Time
	for _, d := range n.st.Outbox {
		if next.IsZero() || d.NextTry.Before(next) {
			next = d.NextTry
		}
	}
	return next
}

func (n *Notifier) pending(d *delivery) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(d.Pending)
}

// record notes one attempt to send d to a target.
func (n *Notifier) record(d *delivery, target string, err error, now time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	h := n.health[target]
	if err == nil {
		h.ok = time.Now()
		n.health[target] = h
		n.stats.Sent++
		n.stats.LastSent = h.ok
		d.Pending = slices.DeleteFunc(d.Pending, func(p string) bool { return p == target })
		n.finish(d)
		n.log.Info("alert sent", "op", "alert", "target", target, "kind", d.Msg.Kind, "condition", d.Msg.Condition)
		return
	}
	h.fail, h.err = time.Now(), err
	n.health[target] = h
	n.stats.Failed++
	n.stats.LastError = err.Error()
	if errors.Is(err, errPermanent) {
		d.Pending = slices.DeleteFunc(d.Pending, func(p string) bool { return p == target })
		n.st.Dropped++
		n.finish(d)
		n.log.Error("alert refused", "op", "alert", "target", target, "kind", d.Msg.Kind, "err", err)
		return
	}
	d.Attempts++
	d.NextTry = now.Add(min(maxBackoff, time.Minute<<min(d.Attempts-1, 10)))
	n.log.Warn("alert not sent; will retry", "op", "alert", "target", target, "kind", d.Msg.Kind, "attempt", d.Attempts, "next", d.NextTry, "err", err)
}

// finish removes d from the outbox once no target waits for it. The
// caller holds n.mu.
func (n *Notifier) finish(d *delivery) {
	if len(d.Pending) == 0 {
		n.st.Outbox = slices.DeleteFunc(n.st.Outbox, func(x *delivery) bool { return x == d })
	}
}
