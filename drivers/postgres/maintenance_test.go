package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/drivers/postgres"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
)

// maintCluster is a cluster with tables the replication role may and may
// not maintain, in several databases, as a practice's server would have.
func maintCluster(t *testing.T) *pgtest.Cluster {
	c := pgtest.New(t, pgtest.Options{})
	c.MustExec(t,
		"CREATE TABLE own_t (id int PRIMARY KEY, v text)",
		"INSERT INTO own_t SELECT g, 'x' FROM generate_series(1, 2000) g",
		"DELETE FROM own_t WHERE id % 2 = 0",
		"ALTER TABLE own_t OWNER TO clinicbox",
		"CREATE TABLE super_t (id int PRIMARY KEY)",
		"CREATE DATABASE emr",
		"CREATE DATABASE owned OWNER clinicbox",
		"CREATE DATABASE locked",
		"REVOKE CONNECT ON DATABASE locked FROM PUBLIC",
		"GRANT frontdesk TO clinicbox",
	)
	execIn(t, c, "emr", "CREATE TABLE patients (id int PRIMARY KEY, name text)",
		"INSERT INTO patients SELECT g, 'Patient ' || g FROM generate_series(1, 500) g",
		"ALTER TABLE patients OWNER TO frontdesk",
		"CREATE SCHEMA \"Billing\"", "CREATE TABLE \"Billing\".\"Invoice Lines\" (n int)",
		"ALTER TABLE \"Billing\".\"Invoice Lines\" OWNER TO frontdesk",
		"CREATE TABLE \"Lab Results\" (n int)", "ALTER TABLE \"Lab Results\" OWNER TO frontdesk")
	execIn(t, c, "owned", "CREATE TABLE notes (id int PRIMARY KEY)")
	return c
}

func execIn(t *testing.T, c *pgtest.Cluster, db string, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := c.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %q: %v", db, s, err)
		}
	}
}

// stats reads whether a table has been vacuumed and analyzed, and its
// primary key's file node (which REINDEX changes).
func stats(t *testing.T, c *pgtest.Cluster, db, schema, table string) (vacuumed, analyzed bool, node uint32) {
	t.Helper()
	ctx := context.Background()
	conn, err := c.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	err = conn.QueryRow(ctx, `SELECT s.last_vacuum IS NOT NULL, s.last_analyze IS NOT NULL,
		coalesce((SELECT pg_relation_filenode(i.indexrelid) FROM pg_index i WHERE i.indrelid = s.relid LIMIT 1), 0)::int8
		FROM pg_stat_user_tables s WHERE s.schemaname = $1 AND s.relname = $2`, schema, table).Scan(&vacuumed, &analyzed, &node)
	if err != nil {
		t.Fatalf("stats of %s.%s.%s: %v", db, schema, table, err)
	}
	return
}

func find(t *testing.T, rep postgres.Report, db, table string) (postgres.DatabaseReport, postgres.TableReport) {
	t.Helper()
	for _, d := range rep.Databases {
		if d.Name != db {
			continue
		}
		for _, tr := range d.Tables {
			if tr.Table() == table {
				return d, tr
			}
		}
		return d, postgres.TableReport{}
	}
	t.Fatalf("database %s not in report %+v", db, rep)
	return postgres.DatabaseReport{}, postgres.TableReport{}
}

func TestVacuumPerTableRights(t *testing.T) {
	c := maintCluster(t)
	_, _, ownNode := stats(t, c, "postgres", "public", "own_t")
	_, _, emrNode := stats(t, c, "emr", "public", "patients")
	// The box is configured with its replication URL; maintenance must
	// use an ordinary connection anyway.
	rep, err := postgres.Vacuum(context.Background(), c.URL()+"&replication=true", postgres.VacuumOptions{Reindex: true})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range rep.Databases {
		names = append(names, d.Name)
	}
	if got, want := strings.Join(names, ","), "emr,locked,owned,postgres"; got != want {
		t.Errorf("databases: got %s; want %s", got, want)
	}
	tests := []struct {
		db, schema, table string
		done, reindexed   bool
		skipped, rskipped string // substrings; "" means none
	}{
		{"postgres", "public", "own_t", true, true, "", ""},
		{"postgres", "public", "super_t", false, false, `owned by "postgres"`, ""},
		{"emr", "public", "patients", true, true, "", ""}, // member of the owning role
		{"emr", "Billing", "Invoice Lines", false, false, "USAGE ON SCHEMA \"Billing\"", ""},
		{"emr", "public", "Lab Results", true, false, "", ""},            // no indexes to rebuild
		{"owned", "public", "notes", true, false, "", "may not reindex"}, // database owner: vacuum only
	}
	for _, tc := range tests {
		t.Run(tc.db+"."+tc.table, func(t *testing.T) {
			_, tr := find(t, rep, tc.db, tc.schema+"."+tc.table)
			if tr.Err != nil {
				t.Fatalf("error: %v", tr.Err)
			}
			if tr.Done != tc.done || tr.Reindexed != tc.reindexed {
				t.Errorf("done, reindexed: got %v, %v; want %v, %v", tr.Done, tr.Reindexed, tc.done, tc.reindexed)
			}
			if !matches(tr.Skipped, tc.skipped) || !matches(tr.ReindexSkipped, tc.rskipped) {
				t.Errorf("skipped: got %q / %q; want %q / %q", tr.Skipped, tr.ReindexSkipped, tc.skipped, tc.rskipped)
			}
			vac, an, _ := stats(t, c, tc.db, tc.schema, tc.table)
			if vac != tc.done || an != tc.done {
				t.Errorf("pg_stat_user_tables last_vacuum, last_analyze set: got %v, %v; want %v", vac, an, tc.done)
			}
		})
	}
	if _, _, n := stats(t, c, "postgres", "public", "own_t"); n == ownNode {
		t.Errorf("own_t's index file node %d did not change; REINDEX did not run", n)
	}
	if _, _, n := stats(t, c, "emr", "public", "patients"); n == emrNode {
		t.Errorf("patients' index file node %d did not change; REINDEX did not run", n)
	}
	if d, _ := find(t, rep, "locked", ""); d.Err == nil || len(d.Tables) != 0 {
		t.Errorf("database without CONNECT: got err %v, %d tables; want an error and none", d.Err, len(d.Tables))
	}
	if _, tr := find(t, rep, "postgres", "public.super_t"); !strings.Contains(tr.Skipped, "OWNER TO ...") || strings.Contains(tr.Skipped, "GRANT \"postgres\"") {
		t.Errorf("skip reason %q does not advise giving the table to the application's role (and only that)", tr.Skipped)
	}
}

func matches(got, want string) bool {
	if want == "" {
		return got == ""
	}
	return strings.Contains(got, want)
}

// When the window closes, the table in progress finishes and no new one
// starts; a closed window starts nothing.
func TestVacuumStopsAtDeadline(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{})
	c.MustExec(t, "CREATE TABLE a (n int)", "CREATE TABLE b (n int)", "CREATE TABLE c (n int)",
		"ALTER TABLE a OWNER TO clinicbox", "ALTER TABLE b OWNER TO clinicbox", "ALTER TABLE c OWNER TO clinicbox")
	t0 := time.Date(2026, 3, 7, 2, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		deadline time.Time
		done     int
	}{
		{"closes after the first table", t0.Add(90 * time.Second), 1},
		{"already closed", t0, 0},
		{"open", t0.Add(time.Hour), 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := t0
			clock := func() time.Time { at := now; now = now.Add(time.Minute); return at }
			rep, err := postgres.Vacuum(context.Background(), c.URL(), postgres.VacuumOptions{
				Databases: []string{"postgres"}, Deadline: tc.deadline, Now: clock})
			if err != nil {
				t.Fatal(err)
			}
			done, notStarted := 0, 0
			for _, tr := range rep.Databases[0].Tables {
				if tr.Done {
					done++
				}
				if tr.NotStarted {
					notStarted++
				}
			}
			if done != tc.done || notStarted != 3-tc.done {
				t.Errorf("done, not started: got %d, %d; want %d, %d", done, notStarted, tc.done, 3-tc.done)
			}
		})
	}
}

func TestVacuumUnreachable(t *testing.T) {
	tests := []struct{ name, url, want string }{
		{"bad URL", "postgres://x:%zz@h/db", "cannot be read"},
		{"nothing listening", "postgres://clinicbox:secret-pw@127.0.0.1:1/postgres?connect_timeout=5", "cannot reach PostgreSQL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := postgres.Vacuum(context.Background(), tc.url, postgres.VacuumOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v; want an error saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret-pw") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}
