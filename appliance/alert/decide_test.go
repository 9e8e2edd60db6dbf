package alert

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/rotation/civil"
)

// step is one Update: at base+at, with these conditions (each began at
// base+its since), expecting exactly these queued messages.
type step struct {
	at    time.Duration
	conds []stepCond
	want  []string
}

type stepCond struct {
	name  string
	sev   status.Severity
	since time.Duration
	drive string
	ack   bool
}

var (
	failed = func(since time.Duration) stepCond {
		return stepCond{name: "backup failed", sev: status.Failure, since: since}
	}
	wrong = func(since time.Duration) stepCond {
		return stepCond{name: "wrong drive", sev: status.Attention, since: since}
	}
	swap = func(since time.Duration) stepCond {
		return stepCond{name: "swap due", sev: status.Attention, since: since}
	}
)

func TestTimelines(t *testing.T) {
	h, m := time.Hour, time.Minute
	tests := []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{"failure: debounce, reminder, resolved", Config{}, []step{
			{0, []stepCond{failed(0)}, nil},
			{1 * m, []stepCond{failed(0)}, nil},
			{2 * m, []stepCond{failed(0)}, []string{"firing:backup failed"}},
			{3 * m, []stepCond{failed(0)}, nil},
			{4*h + 1*m, []stepCond{failed(0)}, nil},
			{4*h + 2*m, []stepCond{failed(0)}, []string{"reminder:backup failed"}},
			{5 * h, nil, nil},
			{5*h + 4*m, nil, nil},
			{5*h + 5*m, nil, []string{"cleared:backup failed"}},
			{6 * h, nil, nil},
		}},
		{"attention waits 15 minutes", Config{}, []step{
			{0, []stepCond{wrong(0)}, nil},
			{14 * m, []stepCond{wrong(0)}, nil},
			{15 * m, []stepCond{wrong(0)}, []string{"firing:wrong drive"}},
			{23 * h, []stepCond{wrong(0)}, nil},
			{24*h + 15*m, []stepCond{wrong(0)}, []string{"reminder:wrong drive"}},
		}},
		{"a blip is never alerted nor resolved", Config{}, []step{
			{0, []stepCond{failed(0)}, nil},
			{1 * m, nil, nil},
			{10 * m, nil, nil},
			{20 * m, []stepCond{failed(20 * m)}, nil},
			{22 * m, []stepCond{failed(20 * m)}, []string{"firing:backup failed"}},
		}},
		{"back within clear_after is the same problem", Config{}, []step{
			{2 * m, []stepCond{failed(0)}, []string{"firing:backup failed"}},
			{3 * m, nil, nil},
			{6 * m, []stepCond{failed(6 * m)}, nil},
			{20 * m, []stepCond{failed(6 * m)}, nil},
		}},
		{"back after resolved waits out the reminder period", Config{}, []step{
			{2 * m, []stepCond{failed(0)}, []string{"firing:backup failed"}},
			{10 * m, nil, nil},
			{15 * m, nil, []string{"cleared:backup failed"}},
			{20 * m, []stepCond{failed(20 * m)}, nil},
			{1 * h, []stepCond{failed(20 * m)}, nil},
			{4*h + 2*m, []stepCond{failed(20 * m)}, []string{"firing:backup failed"}},
		}},
		{"attention escalates to failure at once", Config{}, []step{
			{15 * m, []stepCond{wrong(0)}, []string{"firing:wrong drive"}},
			{16 * m, []stepCond{{name: "wrong drive", sev: status.Failure}}, []string{"firing:wrong drive"}},
			{17 * m, []stepCond{{name: "wrong drive", sev: status.Failure}}, nil},
		}},
		{"acknowledged attention is not reminded", Config{}, []step{
			{15 * m, []stepCond{wrong(0)}, []string{"firing:wrong drive"}},
			{30 * h, []stepCond{{name: "wrong drive", sev: status.Attention, ack: true}}, nil},
		}},
		{"each drive is its own condition", Config{}, []step{
			{15 * m, []stepCond{{name: "wrong drive", sev: status.Attention, drive: "A"}, {name: "wrong drive", sev: status.Attention, drive: "B", since: 10 * m}},
				[]string{"firing:wrong drive/A"}},
			{25 * m, []stepCond{{name: "wrong drive", sev: status.Attention, drive: "A"}, {name: "wrong drive", sev: status.Attention, drive: "B", since: 10 * m}},
				[]string{"firing:wrong drive/B"}},
		}},
		{"debounce and reminder by name and severity", Config{
			Debounce: map[string]Duration{"slot retention": Duration(h), "failure": Duration(10 * m)},
			Remind:   map[string]Duration{"attention": Duration(2 * h)}}, []step{
			{59 * m, []stepCond{{name: "slot retention", sev: status.Attention}, failed(50 * m)}, nil},
			{1 * h, []stepCond{{name: "slot retention", sev: status.Attention}, failed(50 * m)},
				[]string{"firing:backup failed", "firing:slot retention"}},
			{3 * h, []stepCond{{name: "slot retention", sev: status.Attention}, failed(50 * m)}, []string{"reminder:slot retention"}},
		}},
		{"busy and good are not alerts", Config{}, []step{
			{1 * h, []stepCond{{name: "backing up", sev: status.Busy}}, nil},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, _ := newTest(t, tc.cfg)
			for _, s := range tc.steps {
				now := base.Add(s.at)
				var conds []status.Condition
				for _, c := range s.conds {
					conds = append(conds, status.Condition{Name: c.name, Severity: c.sev, Drive: c.drive,
						Since: base.Add(c.since), Message: "do the thing", Acknowledged: c.ack})
				}
				n.Update(now, stat(now, conds...))
				got := queued(n)
				slices.Sort(got)
				if !slices.Equal(got, s.want) {
					t.Fatalf("at +%v: got %q; want %q", s.at, got, s.want)
				}
			}
		})
	}
}

func TestQuietHours(t *testing.T) {
	chicago, err := time.LoadLocation("America/Chicago")
	if err != nil {
		t.Fatal(err)
	}
	evening := time.Date(2026, 3, 2, 21, 50, 0, 0, chicago) // quiet from 22:00 to 07:00
	m, h := time.Minute, time.Hour
	// Offsets are from 21:50 local.
	tests := []struct {
		name  string
		steps []step
	}{
		{"attention waits for the morning", []step{
			{0, []stepCond{wrong(0)}, nil},
			{15 * m, []stepCond{wrong(0)}, nil},
			{9*h + 9*m, []stepCond{wrong(0)}, nil},
			{9*h + 10*m, []stepCond{wrong(0)}, []string{"firing:wrong drive"}},
		}},
		{"a failure goes out at night", []step{
			{1 * h, []stepCond{failed(1 * h)}, nil},
			{1*h + 2*m, []stepCond{failed(1 * h)}, []string{"firing:backup failed"}},
		}},
		{"attention that ends at night is never sent", []step{
			{15 * m, []stepCond{wrong(0)}, nil},
			{2 * h, nil, nil},
			{10 * h, nil, nil},
		}},
		{"its resolution waits for the morning too", []step{
			{-2 * h, []stepCond{wrong(-3 * h)}, []string{"firing:wrong drive"}},
			{1 * h, nil, nil},
			{2 * h, nil, nil},
			{9*h + 10*m, nil, []string{"cleared:wrong drive"}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, _ := newTest(t, Config{Location: chicago,
				QuietHours: civil.Span{Start: civil.TimeOfDay{Hour: 22}, End: civil.TimeOfDay{Hour: 7}}})
			for _, s := range tc.steps {
				now := evening.Add(s.at)
				var conds []status.Condition
				for _, c := range s.conds {
					conds = append(conds, cond(c.name, c.sev, evening.Add(c.since)))
				}
				n.Update(now, stat(now, conds...))
				if got := queued(n); !slices.Equal(got, s.want) {
					t.Fatalf("at %s: got %q; want %q", now.In(chicago).Format("Mon 15:04"), got, s.want)
				}
			}
		})
	}
}

// "swap due" is alerted at most once per local day, even when it clears
// and comes back.
func TestSwapDueOncePerDay(t *testing.T) {
	n, _ := newTest(t, Config{})
	morning := time.Date(2026, 3, 3, 8, 0, 0, 0, time.UTC)
	steps := []step{
		{15 * time.Minute, []stepCond{swap(0)}, []string{"firing:swap due"}},
		{40 * time.Minute, nil, nil},
		{50 * time.Minute, nil, []string{"cleared:swap due"}},
		{3 * time.Hour, []stepCond{swap(3 * time.Hour)}, nil},
		{10 * time.Hour, []stepCond{swap(3 * time.Hour)}, nil},
		{24*time.Hour + 15*time.Minute, []stepCond{swap(3 * time.Hour)}, []string{"firing:swap due"}}, // the next day
	}
	for _, s := range steps {
		now := morning.Add(s.at)
		var conds []status.Condition
		for _, c := range s.conds {
			conds = append(conds, cond(c.name, c.sev, morning.Add(c.since)))
		}
		n.Update(now, stat(now, conds...))
		if got := queued(n); !slices.Equal(got, s.want) {
			t.Fatalf("at +%v: got %q; want %q", s.at, got, s.want)
		}
	}
}

// Before the clock is set (a Pi starts in 1970) nothing is decided.
func TestUntrustedClock(t *testing.T) {
	n, _ := newTest(t, Config{})
	at := time.Unix(3600, 0)
	n.Update(at, stat(at, cond("backup failed", status.Failure, time.Unix(0, 0))))
	if got := queued(n); len(got) != 0 {
		t.Errorf("got %q; want nothing before the clock is set", got)
	}
}

func TestMessageWords(t *testing.T) {
	n, _ := newTest(t, Config{})
	c := status.Condition{Name: "backup failed", Severity: status.Failure, Drive: "Son-1", Since: base,
		Message: "The backup could not connect to postgres://clinicbox:s3cret-pw@db.local/emr (password=s3cret-pw); check the server."}
	other := cond("swap due", status.Attention, base)
	n.Update(base.Add(3*time.Minute), stat(base, c, other))
	n.mu.Lock()
	m := n.st.Outbox[0].Msg
	n.mu.Unlock()
	if m.Subject != "clinicbox-smith: FAILURE: backup failed (drive Son-1)" {
		t.Errorf("subject: got %q", m.Subject)
	}
	for _, want := range []string{"reports a failure", "Problem: backup failed (drive Son-1)", "What to do: The backup could not connect",
		"Began: Mon 2 Mar 2026 10:00 (3 minutes ago)", "- swap due (attention): swap due: do the thing", "reminded every 4 hours", "no patient data"} {
		if !strings.Contains(m.Body, want) {
			t.Errorf("body lacks %q:\n%s", want, m.Body)
		}
	}
	if strings.Contains(m.Body+m.Text, "s3cret") {
		t.Errorf("message shows the password:\n%s", m.Body)
	}
}
