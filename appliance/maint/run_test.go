package maint

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/drivers/postgres"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
)

// The run gets the window's end as its deadline and sums the report.
func TestRunIfDueSumsTheReport(t *testing.T) {
	now := time.Date(2026, 3, 7, 1, 30, 0, 0, time.UTC)
	var got postgres.VacuumOptions
	m := &Maintainer{
		Scheduler: Scheduler{Window: Window{Start: tod(1, 0), End: tod(5, 0)}},
		Settings:  Settings{Enabled: true, Reindex: true, Databases: []string{"emr"}},
		URL:       "postgres://clinicbox:pw@server/postgres",
		Now:       func() time.Time { return now.Add(90 * time.Second) },
		Vacuum: func(_ context.Context, url string, opt postgres.VacuumOptions) (postgres.Report, error) {
			got = opt
			return postgres.Report{Databases: []postgres.DatabaseReport{
				{Name: "emr", Tables: []postgres.TableReport{
					{Schema: "public", Name: "patients", Done: true, Reindexed: true},
					{Schema: "public", Name: "notes", Skipped: "role \"clinicbox\" may not vacuum it"},
					{Schema: "public", Name: "labs", Done: true, Err: errors.New("reindex failed")},
					{Schema: "public", Name: "audit", NotStarted: true},
				}},
				{Name: "locked", Err: errors.New("no CONNECT")},
			}}, nil
		},
	}
	if _, ran := m.RunIfDue(context.Background(), now, now.Add(-10*time.Minute)); ran {
		t.Fatalf("ran twice in one window")
	}
	r, ran := m.RunIfDue(context.Background(), now, now.Add(-24*time.Hour))
	if !ran {
		t.Fatal("did not run inside the window")
	}
	if want := time.Date(2026, 3, 7, 5, 0, 0, 0, time.UTC); !got.Deadline.Equal(want) || !got.Reindex || len(got.Databases) != 1 {
		t.Errorf("options: got %+v; want deadline %v, reindex, databases [emr]", got, want)
	}
	want := Result{Tables: 4, Done: 2, Reindexed: 1, Skipped: 1, NotStarted: 1, Failed: 2}
	if r.Tables != want.Tables || r.Done != want.Done || r.Reindexed != want.Reindexed || r.Skipped != want.Skipped ||
		r.NotStarted != want.NotStarted || r.Failed != want.Failed {
		t.Errorf("got %+v; want counts of %+v", r, want)
	}
	st := r.Status()
	if !st.LastRun.Equal(now) {
		t.Errorf("last run: got %v; want %v", st.LastRun, now)
	}
	for _, part := range []string{"2 of 4 tables vacuumed and analyzed", "1 reindexed", "1 skipped", "1 left for the next window", "2 failed", "in 1m30s", "emr.public.notes skipped"} {
		if !strings.Contains(st.Result, part) {
			t.Errorf("result %q does not say %q", st.Result, part)
		}
	}
}

func TestRunDisabledOrOutsideWindow(t *testing.T) {
	calls := 0
	vacuum := func(context.Context, string, postgres.VacuumOptions) (postgres.Report, error) {
		calls++
		return postgres.Report{}, nil
	}
	w := Window{Start: tod(1, 0), End: tod(5, 0)}
	inside := time.Date(2026, 3, 7, 2, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		m    Maintainer
		now  time.Time
	}{
		{"disabled", Maintainer{Scheduler: Scheduler{Window: w}, Vacuum: vacuum}, inside},
		{"outside the window", Maintainer{Scheduler: Scheduler{Window: w}, Settings: Settings{Enabled: true}, Vacuum: vacuum}, inside.Add(4 * time.Hour)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, ran := tc.m.RunIfDue(context.Background(), tc.now, time.Time{}); ran || calls != 0 {
				t.Errorf("ran %v, %d calls; want no run", ran, calls)
			}
		})
	}
}

// Against a real server: the role's own tables are done, the superuser's
// are skipped with advice, and the log names tables without the password.
func TestRunAgainstPostgres(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{})
	c.MustExec(t, "CREATE TABLE visits (id int PRIMARY KEY)", "ALTER TABLE visits OWNER TO clinicbox",
		"CREATE TABLE billing (id int PRIMARY KEY)")
	var logs bytes.Buffer
	m := &Maintainer{Settings: Settings{Enabled: true, Reindex: true, Databases: []string{"postgres"}},
		URL: c.URL(), Log: slog.New(slog.NewTextHandler(&logs, nil))}
	now := time.Now()
	r := m.Run(context.Background(), now, now.Add(time.Hour))
	if r.Err != nil || r.Tables != 2 || r.Done != 1 || r.Reindexed != 1 || r.Skipped != 1 || r.Failed != 0 {
		t.Fatalf("got %+v; want 2 tables, 1 done and reindexed, 1 skipped", r)
	}
	if !strings.Contains(r.String(), "postgres.public.billing skipped") {
		t.Errorf("result %q does not name the skipped table", r.String())
	}
	if !strings.Contains(logs.String(), "table=postgres.public.visits") || strings.Contains(logs.String(), pgtest.ReplPassword) {
		t.Errorf("log does not name the table, or shows the password:\n%s", logs.String())
	}
}
