package maint

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/drivers/postgres"
)

// VacuumFunc runs the maintenance statements; postgres.Vacuum in the box.
type VacuumFunc func(ctx context.Context, dbURL string, opt postgres.VacuumOptions) (postgres.Report, error)

// Maintainer runs maintenance when the scheduler says it is due.
type Maintainer struct {
	Scheduler Scheduler
	Settings  Settings
	// URL is the database URL (a replication URL is fine); it is never
	// logged or shown.
	URL string
	// Vacuum does the work; nil means postgres.Vacuum.
	Vacuum VacuumFunc
	// Now is the clock that closes the window; nil means time.Now.
	Now func() time.Time
	Log *slog.Logger
}

// Result is one run's outcome, in counts and the problems worth showing.
type Result struct {
	Start, End time.Time
	Tables     int // tables looked at
	Done       int // vacuumed and analyzed
	Reindexed  int
	Skipped    int // not allowed or busy; see Problems
	NotStarted int // the window closed first
	Failed     int // a statement failed, or a whole database could not be reached
	// Problems name the database or table and say what is wrong; at most
	// maxProblems are kept.
	Problems []string
	// Err is set when nothing could be done at all.
	Err error
}

const maxProblems = 20

// String says in one line what the run did, for the status page.
func (r Result) String() string {
	if r.Err != nil {
		return "maintenance could not run: " + r.Err.Error()
	}
	s := fmt.Sprintf("%d of %d tables vacuumed and analyzed", r.Done, r.Tables)
	if r.Reindexed > 0 {
		s += fmt.Sprintf(", %d reindexed", r.Reindexed)
	}
	for _, part := range []struct {
		n    int
		what string
	}{{r.Skipped, "skipped"}, {r.NotStarted, "left for the next window"}, {r.Failed, "failed"}} {
		if part.n > 0 {
			s += fmt.Sprintf(", %d %s", part.n, part.what)
		}
	}
	s += fmt.Sprintf(" in %s", r.End.Sub(r.Start).Round(time.Second))
	if len(r.Problems) > 0 {
		s += "; " + strings.Join(r.Problems[:min(3, len(r.Problems))], "; ")
	}
	return s
}

// Status is the result as the status document carries it.
func (r Result) Status() status.Maintenance {
	return status.Maintenance{LastRun: r.Start, Result: r.String()}
}

// RunIfDue runs maintenance when it is enabled and due (see Scheduler.Due)
// and reports whether it ran. It stops starting tables when the window
// closes.
func (m *Maintainer) RunIfDue(ctx context.Context, now, lastRun time.Time) (Result, bool) {
	if !m.Settings.Enabled || !m.Scheduler.Due(now, lastRun) {
		return Result{}, false
	}
	_, end, _ := m.Scheduler.Open(now)
	return m.Run(ctx, now, end), true
}

// Run runs maintenance now, starting no table at or after deadline.
func (m *Maintainer) Run(ctx context.Context, now, deadline time.Time) Result {
	clock, vacuum, log := m.Now, m.Vacuum, m.Log
	if clock == nil {
		clock = time.Now
	}
	if vacuum == nil {
		vacuum = postgres.Vacuum
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log.Info("maintenance starting", "op", "maintenance", "reindex", m.Settings.Reindex, "until", deadline)
	rep, err := vacuum(ctx, m.URL, postgres.VacuumOptions{Databases: m.Settings.Databases,
		Reindex: m.Settings.Reindex, Deadline: deadline, Now: clock})
	r := Result{Start: now, End: clock(), Err: err}
	if err != nil {
		log.Error("maintenance could not run", "op", "maintenance", "err", err)
		return r
	}
	for _, db := range rep.Databases {
		r.add(db, log)
	}
	log.Info("maintenance finished", "op", "maintenance", "result", r.String(), "dur", r.End.Sub(r.Start))
	return r
}

func (r *Result) add(db postgres.DatabaseReport, log *slog.Logger) {
	if db.Err != nil {
		r.Failed++
		r.problem(fmt.Sprintf("database %s: %v", db.Name, db.Err))
		log.Warn("maintenance: database skipped", "op", "maintenance", "db", db.Name, "err", db.Err)
	}
	for _, t := range db.Tables {
		r.Tables++
		name := db.Name + "." + t.Table()
		switch {
		case t.Done:
			r.Done++
		case t.NotStarted:
			r.NotStarted++
		case t.Skipped != "":
			r.Skipped++
			r.problem(fmt.Sprintf("%s skipped: %s", name, t.Skipped))
		}
		if t.Reindexed {
			r.Reindexed++
		}
		if t.Err != nil {
			r.Failed++
			r.problem(fmt.Sprintf("%s: %v", name, t.Err))
		}
		if t.NotStarted {
			continue
		}
		log.Info("maintenance: table", "op", "maintenance", "table", name, "done", t.Done, "reindexed", t.Reindexed,
			"skipped", t.Skipped, "reindex_skipped", t.ReindexSkipped, "err", t.Err, "dur", t.Duration)
	}
}

func (r *Result) problem(p string) {
	if len(r.Problems) < maxProblems {
		r.Problems = append(r.Problems, p)
	}
}
