package alert

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
)

// Kinds of message.
const (
	KindFiring   = "firing"   // a condition lasted past its debounce
	KindReminder = "reminder" // it is still there
	KindCleared  = "cleared"  // it went away
	KindSummary  = "summary"  // the daily summary (e-mail only)
)

// Message is one alert, reminder, "resolved" note or summary, composed
// when it is decided so that a retry sends the same words.
type Message struct {
	ID        string          `json:"id"`
	Time      time.Time       `json:"time"`
	Kind      string          `json:"kind"`
	Condition string          `json:"condition,omitempty"`
	Drive     string          `json:"drive,omitempty"`
	Severity  status.Severity `json:"severity"`
	// Text is the condition's own message (what is wrong, what to do).
	Text    string `json:"text,omitempty"`
	Subject string `json:"subject"`
	Body    string `json:"body"`
}

// secretPatterns catch credentials that could slip into a message through
// an error text: passwords in URLs and in key=value connection strings.
var secretPatterns = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`(://[^:/@\s]*:)[^@\s]+@`), "${1}xxxxx@"},
	{regexp.MustCompile(`(?i)((?:password|passwd|pwd|token)\s*[=:]\s*)[^\s&;,]+`), "${1}xxxxx"},
}

// scrub removes credentials from text bound for a message.
func scrub(s string) string {
	for _, p := range secretPatterns {
		s = p.re.ReplaceAllString(s, p.with)
	}
	return s
}

// what names a condition, with its drive.
func what(name, drive string) string {
	if drive == "" {
		return name
	}
	return name + " (drive " + drive + ")"
}

func (n *Notifier) compose(kind string, t *tracked, now time.Time, st status.Status) Message {
	m := Message{Time: now, Kind: kind, Condition: t.Name, Drive: t.Drive, Severity: t.Severity, Text: scrub(t.Message)}
	m.ID = fmt.Sprintf("%s-%s-%d", kind, strings.ReplaceAll(key(t.Name, t.Drive), " ", "_"), now.UnixNano())
	label := "needs attention"
	if t.Severity >= status.Failure {
		label = "FAILURE"
	}
	var b strings.Builder
	switch kind {
	case KindFiring:
		m.Subject = fmt.Sprintf("%s: %s: %s", n.host, label, what(t.Name, t.Drive))
		if t.Severity >= status.Failure {
			fmt.Fprintf(&b, "The backup box %s reports a failure: backups may be at risk.\n\n", n.host)
		} else {
			fmt.Fprintf(&b, "The backup box %s needs someone's attention.\n\n", n.host)
		}
	case KindReminder:
		m.Subject = fmt.Sprintf("%s: reminder, %s: %s", n.host, label, what(t.Name, t.Drive))
		fmt.Fprintf(&b, "Reminder: the backup box %s still reports this problem.\n\n", n.host)
	case KindCleared:
		m.Subject = fmt.Sprintf("%s: resolved: %s", n.host, what(t.Name, t.Drive))
		m.Text = "Resolved: " + what(t.Name, t.Drive) + " is no longer reported."
		fmt.Fprintf(&b, "Resolved: the backup box %s no longer reports this problem.\n\n", n.host)
	}
	fmt.Fprintf(&b, "Problem: %s\n", what(t.Name, t.Drive))
	if m.Text != "" && kind != KindCleared {
		fmt.Fprintf(&b, "What to do: %s\n", m.Text)
	}
	fmt.Fprintf(&b, "Began: %s (%s ago)\n", n.when(t.Since), ago(now.Sub(t.Since)))
	if kind == KindCleared {
		fmt.Fprintf(&b, "Resolved: %s\n", n.when(t.GoneSince))
	}
	n.writeContext(&b, st, t)
	if kind != KindCleared {
		fmt.Fprintf(&b, "\nWhile it lasts you will be reminded every %s, and told when it is resolved.\n", ago(n.remind(t.Name, t.Severity)))
	}
	n.footer(&b)
	m.Subject, m.Body = scrub(m.Subject), scrub(b.String())
	return m
}

// writeContext adds the box's headline and its other problems.
func (n *Notifier) writeContext(b *strings.Builder, st status.Status, except *tracked) {
	if st.Headline != "" {
		fmt.Fprintf(b, "\nThe box now says: %s\n", st.Headline)
	}
	var others []string
	for _, c := range st.Conditions {
		if c.Severity >= status.Attention && key(c.Name, c.Drive) != key(except.Name, except.Drive) {
			others = append(others, fmt.Sprintf("- %s (%s): %s", what(c.Name, c.Drive), c.Severity, c.Message))
		}
	}
	if len(others) > 0 {
		fmt.Fprintf(b, "Other current problems:\n%s\n", strings.Join(others, "\n"))
	}
}

func (n *Notifier) footer(b *strings.Builder) {
	fmt.Fprintf(b, "\n-- \nSent by the backup box %s. This message contains no patient data.\n", n.host)
}

// when writes a time in the practice's zone, as "Mon 2 Mar 2026 08:05".
func (n *Notifier) when(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.In(n.loc).Format("Mon 2 Jan 2006 15:04")
}

// ago writes a duration in plain words: "45 minutes", "2 hours 5 minutes",
// "3 days 4 hours".
func ago(d time.Duration) string {
	d = d.Round(time.Minute)
	plural := func(n int, unit string) string {
		if n == 1 {
			return fmt.Sprintf("1 %s", unit)
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	days, hours, mins := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour), int(d%time.Hour/time.Minute)
	switch {
	case d < time.Minute:
		return "less than a minute"
	case days > 0 && hours > 0:
		return plural(days, "day") + " " + plural(hours, "hour")
	case days > 0:
		return plural(days, "day")
	case hours > 0 && mins > 0:
		return plural(hours, "hour") + " " + plural(mins, "minute")
	case hours > 0:
		return plural(hours, "hour")
	}
	return plural(mins, "minute")
}
