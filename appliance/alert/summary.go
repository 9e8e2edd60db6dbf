package alert

import (
	"fmt"
	"strings"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
)

// summaryDue returns the daily summary when its time has come today and it
// has not been sent today. The caller holds n.mu.
func (n *Notifier) summaryDue(now time.Time, st status.Status) (Message, bool) {
	at := n.cfg.SummaryAt
	if at == nil {
		return Message{}, false
	}
	local := now.In(n.loc)
	day := local.Format(time.DateOnly)
	y, m, d := local.Date()
	if n.st.LastSummary == day || now.Before(time.Date(y, m, d, at.Hour, at.Minute, 0, 0, n.loc)) {
		return Message{}, false
	}
	n.st.LastSummary = day
	return n.summary(now, st), true
}

var overall = map[status.Severity]string{status.Good: "all good", status.Busy: "all good (working)",
	status.Attention: "needs attention", status.Failure: "FAILURE"}

func (n *Notifier) summary(now time.Time, st status.Status) Message {
	sev := status.Worst(st.Conditions)
	m := Message{Time: now, Kind: KindSummary, Severity: sev,
		ID:      fmt.Sprintf("summary-%d", now.UnixNano()),
		Subject: fmt.Sprintf("%s: daily summary, %s", n.host, overall[sev])}
	var b strings.Builder
	fmt.Fprintf(&b, "Daily summary from the backup box %s, %s.\n\n", n.host, n.when(now))
	fmt.Fprintf(&b, "Overall: %s\n", overall[sev])
	if st.Headline != "" {
		fmt.Fprintf(&b, "%s\n", st.Headline)
	}
	section(&b, "Problems now", "none", st.Conditions, func(c status.Condition) string {
		return fmt.Sprintf("%s (%s, since %s): %s", what(c.Name, c.Drive), c.Severity, n.when(c.Since), c.Message)
	})
	section(&b, "Drives", "none enrolled", st.Drives, func(d status.Drive) string {
		s := fmt.Sprintf("%s (%s): %s", d.ID, d.Generation, d.Where)
		if !d.AwaySince.IsZero() {
			s += ", away since " + n.when(d.AwaySince)
		}
		return s + fmt.Sprintf(", last backup %s, health %s", n.when(d.LastBackup), orUnknown(string(d.Health.Verdict)))
	})
	backups := st.Backups[max(0, len(st.Backups)-3):]
	section(&b, "Latest backups", "none yet", backups, func(bk status.Backup) string {
		where := "offsite"
		if bk.Drive != "" {
			where = "drive " + bk.Drive
		}
		return fmt.Sprintf("%s on %s, finished %s, %s, %s", bk.ID, where, n.when(bk.End), status.Bytes(bk.Bytes), n.verified(bk))
	})
	fmt.Fprintf(&b, "\nChanges since the last backup (WAL) on the drive: %s\n", n.lag(st.WAL.Local))
	section(&b, "Offsite copies", "none configured", st.Offsite, func(o status.Offsite) string {
		link := "connected"
		if !o.Connected {
			link = "NOT connected"
		}
		return fmt.Sprintf("%s: %s, %s, %s waiting to be sent, last full backup %s", o.Name, link, n.lag(o.Lag), status.Bytes(o.BacklogBytes), n.when(o.LastBaseBackup))
	})
	section(&b, "WAL kept on the database server for the box", "no replication slots", st.Slots, func(s status.Slot) string {
		if !s.Exists {
			return s.Name + ": missing"
		}
		limit := "no limit set"
		if s.LimitBytes > 0 {
			limit = "limit " + status.Bytes(s.LimitBytes)
		}
		return fmt.Sprintf("%s: %s kept (%s), status %s", s.Name, status.Bytes(s.RetainedBytes), limit, orUnknown(s.WALStatus))
	})
	section(&b, "Latest restore drill of each drive", "none yet", status.LatestDrills(st.Drills), func(d status.Drill) string {
		switch {
		case d.NotRun:
			return fmt.Sprintf("%s: NOT RUN %s: %s", d.Drive, n.when(d.Time), strings.Join(d.Problems, "; "))
		case !d.OK:
			return fmt.Sprintf("%s: FAILED %s: %s", d.Drive, n.when(d.Time), strings.Join(d.Problems, "; "))
		}
		return fmt.Sprintf("%s: passed %s, a usable database in %.0f s, %.0f s of changes missing", d.Drive, n.when(d.Time), d.RTO, d.RPO)
	})
	if !st.Maint.LastRun.IsZero() {
		fmt.Fprintf(&b, "\nDatabase maintenance: last run %s: %s\n", n.when(st.Maint.LastRun), st.Maint.Result)
	}
	var today []status.Event
	for _, e := range st.Events {
		if now.Sub(e.Time) <= 24*time.Hour && !e.Time.After(now) {
			today = append(today, e)
		}
	}
	section(&b, "Events in the last 24 hours", "none", today, func(e status.Event) string {
		return fmt.Sprintf("%s %s: %s", e.Time.In(n.loc).Format("Mon 15:04"), e.Kind, e.Message)
	})
	n.footer(&b)
	m.Subject, m.Body = scrub(m.Subject), scrub(b.String())
	return m
}

// section writes a heading and one line per item, or the none text.
func section[T any](b *strings.Builder, title, none string, items []T, line func(T) string) {
	if len(items) == 0 {
		fmt.Fprintf(b, "\n%s: %s\n", title, none)
		return
	}
	fmt.Fprintf(b, "\n%s:\n", title)
	for _, it := range items {
		fmt.Fprintf(b, "- %s\n", line(it))
	}
}

func (n *Notifier) verified(bk status.Backup) string {
	switch bk.Verified {
	case status.VerifiedOK:
		return "verified " + n.when(bk.VerifiedAt)
	case status.VerifyFailed:
		return "VERIFICATION FAILED: " + strings.Join(bk.Problems, "; ")
	case status.NotVerified:
	}
	return "not yet verified"
}

func (n *Notifier) lag(l status.Lag) string {
	s := "not streaming"
	if l.Streaming {
		s = "streaming"
	}
	s += fmt.Sprintf(", %s behind (%s)", ago(time.Duration(l.Seconds*float64(time.Second))), status.Bytes(l.Bytes))
	if l.LastError != "" {
		s += ", last error: " + l.LastError
	}
	return s
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
