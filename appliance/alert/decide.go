package alert

import (
	"slices"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
)

// Defaults for Config's durations.
const (
	DefaultFailureDebounce   = 2 * time.Minute
	DefaultAttentionDebounce = 15 * time.Minute
	DefaultFailureRemind     = 4 * time.Hour
	DefaultAttentionRemind   = 24 * time.Hour
	DefaultClearAfter        = 5 * time.Minute
)

// key identifies a condition: its name, and its drive when it is about one.
func key(name, drive string) string {
	if drive == "" {
		return name
	}
	return name + "/" + drive
}

func pick(m map[string]Duration, name string, sev status.Severity, def time.Duration) time.Duration {
	if d, ok := m[name]; ok {
		return time.Duration(d)
	}
	if d, ok := m[sev.String()]; ok {
		return time.Duration(d)
	}
	return def
}

func (n *Notifier) debounce(name string, sev status.Severity) time.Duration {
	if sev >= status.Failure {
		return pick(n.cfg.Debounce, name, sev, DefaultFailureDebounce)
	}
	return pick(n.cfg.Debounce, name, sev, DefaultAttentionDebounce)
}

func (n *Notifier) remind(name string, sev status.Severity) time.Duration {
	if sev >= status.Failure {
		return pick(n.cfg.Remind, name, sev, DefaultFailureRemind)
	}
	return pick(n.cfg.Remind, name, sev, DefaultAttentionRemind)
}

// quiet reports whether now falls in quiet hours.
func (n *Notifier) quiet(now time.Time) bool { return n.cfg.QuietHours.Contains(now, n.loc) }

// held reports whether a message about a condition of this severity waits
// for quiet hours to end: failures never wait.
func (n *Notifier) held(sev status.Severity, now time.Time) bool {
	return sev < status.Failure && n.quiet(now)
}

// decide updates the tracked conditions from the status document and
// returns the messages to send. The caller holds n.mu.
func (n *Notifier) decide(now time.Time, st status.Status) []Message {
	var out []Message
	seen := map[string]bool{}
	for _, c := range st.Conditions {
		if c.Severity < status.Attention {
			continue
		}
		k := key(c.Name, c.Drive)
		seen[k] = true
		t := n.present(k, c, now)
		if m, ok := n.decidePresent(t, now, st); ok {
			out = append(out, m)
		}
	}
	for k, t := range n.st.Conditions {
		if seen[k] {
			continue
		}
		if t.GoneSince.IsZero() {
			t.GoneSince = now
		}
		gone := now.Sub(t.GoneSince) >= n.clearAfter
		if t.Alerted && gone && !n.held(t.Severity, now) {
			out = append(out, n.compose(KindCleared, t, now, st))
			t.Alerted = false
		}
		// Forget it once it can no longer suppress a new alert.
		if !t.Alerted && gone && (t.LastSent.IsZero() || now.Sub(t.LastSent) >= n.remind(t.Name, t.Severity)) {
			delete(n.st.Conditions, k)
		}
	}
	return out
}

// present records that condition c is there and returns its tracking.
func (n *Notifier) present(k string, c status.Condition, now time.Time) *tracked {
	since := now
	if !c.Since.IsZero() && c.Since.Before(now) {
		since = c.Since
	}
	t := n.st.Conditions[k]
	switch {
	case t == nil:
		t = &tracked{Name: c.Name, Drive: c.Drive, Since: since}
		n.st.Conditions[k] = t
	case !t.GoneSince.IsZero() && now.Sub(t.GoneSince) >= n.clearAfter && !t.Alerted:
		t.Since = since // back after it was resolved: a new occurrence
	}
	t.GoneSince = time.Time{}
	t.Severity, t.Message, t.Ack = c.Severity, c.Message, c.Acknowledged
	return t
}

func (n *Notifier) decidePresent(t *tracked, now time.Time, st status.Status) (Message, bool) {
	remind := n.remind(t.Name, t.Severity)
	day := now.In(n.loc).Format(time.DateOnly)
	daily := slices.Contains(n.daily, t.Name)
	switch {
	case n.held(t.Severity, now):
		return Message{}, false
	case t.Alerted && t.Severity > t.AlertedSeverity: // escalation: no waiting
	case t.Alerted:
		if now.Sub(t.LastSent) < remind || (t.Ack && t.Severity < status.Failure) || (daily && n.st.Daily[t.Name] == day) {
			return Message{}, false
		}
		t.LastSent = now
		return n.compose(KindReminder, t, now, st), true
	case now.Sub(t.Since) < n.debounce(t.Name, t.Severity):
		return Message{}, false
	case !t.LastSent.IsZero() && now.Sub(t.LastSent) < remind:
		return Message{}, false // alerted, resolved and back within the reminder period
	case daily && n.st.Daily[t.Name] == day:
		return Message{}, false
	}
	t.Alerted, t.AlertedSeverity, t.LastSent = true, t.Severity, now
	if daily {
		n.st.Daily[t.Name] = day
	}
	return n.compose(KindFiring, t, now, st), true
}
