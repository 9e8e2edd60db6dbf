package alert

import (
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/rotation/civil"
)

func TestDailySummary(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := newTest(t, Config{Location: berlin, SummaryAt: &civil.TimeOfDay{Hour: 7, Minute: 30},
		SMTP: &SMTPConfig{Server: "mail.example:587", From: "box@practice.example", To: []string{"manager@practice.example"}}})
	day := time.Date(2026, 3, 3, 7, 0, 0, 0, berlin)
	st := summaryStatus(day)
	tests := []struct {
		at   time.Duration
		want int
	}{
		{29 * time.Minute, 0},
		{30 * time.Minute, 1},
		{2 * time.Hour, 0},
		{24*time.Hour + 29*time.Minute, 0},
		{24*time.Hour + 31*time.Minute, 1},
	}
	var first Message
	for _, tc := range tests {
		now := day.Add(tc.at)
		n.Update(now, st)
		n.mu.Lock()
		var got []Message
		for _, d := range n.st.Outbox {
			if d.Msg.Kind == KindSummary {
				got = append(got, d.Msg)
			}
		}
		n.st.Outbox = nil
		n.mu.Unlock()
		if len(got) != tc.want {
			t.Fatalf("at %s: got %d summaries; want %d", now.Format("Mon 15:04"), len(got), tc.want)
		}
		if len(got) == 1 && first.ID == "" {
			first = got[0]
		}
	}
	if want := "clinicbox-smith: daily summary, needs attention"; first.Subject != want {
		t.Errorf("subject: got %q; want %q", first.Subject, want)
	}
	for _, want := range []string{
		"Daily summary from the backup box clinicbox-smith, Tue 3 Mar 2026 07:30.",
		"Overall: needs attention",
		"- swap due (attention, since Tue 3 Mar 2026 07:00): Swap the drive",
		"- Son-1 (son): in box, last backup Mon 2 Mar 2026 21:40, health ok",
		"- Father-1 (father): offsite, away since Fri 27 Feb 2026 08:00",
		"- b-0302 on drive Son-1, finished Mon 2 Mar 2026 21:40, 1.5 GiB, verified Mon 2 Mar 2026 21:55",
		"on the drive: streaming, less than a minute behind (48.0 KiB)",
		"- vault: NOT connected, not streaming, 3 hours behind (2.0 MiB), 120.0 MiB waiting to be sent",
		"- clinicbox_drive: 512.0 MiB kept (limit 8.0 GiB), status reserved",
		"Database maintenance: last run Sun 1 Mar 2026 02:00: 12 of 12 tables vacuumed",
		"- Mon 21:55 verified: nightly backup verified",
		"- Father-1: FAILED Sun 1 Mar 2026 03:00: 000000010000000000000003 is damaged",
		"- Son-1: passed Mon 2 Mar 2026 23:00, a usable database in 41 s, 12 s of changes missing",
	} {
		if !strings.Contains(first.Body, want) {
			t.Errorf("summary lacks %q:\n%s", want, first.Body)
		}
	}
	if strings.Contains(first.Body, "last week's event") {
		t.Errorf("summary shows an event older than a day:\n%s", first.Body)
	}
}

func summaryStatus(now time.Time) status.Status {
	at := func(d, h, m int) time.Time { return time.Date(2026, 3, d, h, m, 0, 0, now.Location()) }
	conds := []status.Condition{{Name: "swap due", Severity: status.Attention, Since: now, Message: "Swap the drive: take Son-1 offsite, bring Father-1."}}
	return status.Status{Time: now, Severity: status.Attention, Headline: "Swap the drive now.", Conditions: conds,
		Drives: []status.Drive{
			{ID: "Son-1", Generation: "son", Where: "in box", LastBackup: at(2, 21, 40), Health: status.Health{Verdict: "ok"}},
			{ID: "Father-1", Generation: "father", Where: "offsite", AwaySince: time.Date(2026, 2, 27, 8, 0, 0, 0, now.Location())},
		},
		Backups: []status.Backup{{ID: "b-0302", Drive: "Son-1", End: at(2, 21, 40), Bytes: 1536 << 20, Verified: "ok", VerifiedAt: at(2, 21, 55)}},
		WAL:     status.WAL{Local: status.Lag{Streaming: true, Bytes: 48 << 10, Seconds: 2}},
		Offsite: []status.Offsite{{Name: "vault", Lag: status.Lag{Seconds: 3 * 3600, Bytes: 2 << 20}, BacklogBytes: 120 << 20}},
		Slots:   []status.Slot{{Name: "clinicbox_drive", Exists: true, WALStatus: "reserved", RetainedBytes: 512 << 20, LimitBytes: 8 << 30}},
		Maint:   status.Maintenance{LastRun: at(1, 2, 0), Result: "12 of 12 tables vacuumed and analyzed in 3m"},
		Drills: []status.Drill{{Time: at(1, 3, 0), Drive: "Son-1", OK: true, RTO: 50},
			{Time: at(1, 3, 0), Drive: "Father-1", Problems: []string{"000000010000000000000003 is damaged"}},
			{Time: at(2, 23, 0), Drive: "Son-1", OK: true, RTO: 41, RPO: 12}},
		Events: []status.Event{
			{Time: at(2, 21, 55), Kind: "verified", Message: "nightly backup verified"},
			{Time: time.Date(2026, 2, 24, 9, 0, 0, 0, now.Location()), Kind: "inserted", Message: "last week's event"},
		},
	}
}
