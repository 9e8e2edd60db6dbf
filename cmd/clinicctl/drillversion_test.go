package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
)

// versionedRepo backs up a cluster of the given major version with
// clinicctl backup, adds rows afterwards and streams their WAL with
// clinicctl stream, as the box does. It returns the repository, the
// identity file, the environment clinicctl runs with, and the rows the
// visits table holds at the end.
func versionedRepo(t *testing.T, major int) (repo, idFile string, env []string, rows int) {
	t.Helper()
	c := pgtest.New(t, pgtest.Options{Major: major})
	top, err := os.MkdirTemp("", "clinicctl-version-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(top) })
	os.Chmod(top, 0o755) // the drill's server reads the repository
	id, _ := age.GenerateX25519Identity()
	idFile, repo = filepath.Join(top, "key"), filepath.Join(top, "repo")
	os.WriteFile(idFile, []byte(id.String()+"\n"), 0o600)
	env = append(os.Environ(), "CLINICBOX_SIGN_KEY="+filepath.Join(top, "sign.key"), "CLINICBOX_TRUST_FILE="+filepath.Join(top, "trust.json"),
		"TMPDIR="+filepath.Join(top, "tmp"))
	os.Mkdir(filepath.Join(top, "tmp"), 0o755)
	c.MustExec(t, "CREATE TABLE visits (id int PRIMARY KEY, note text)",
		"INSERT INTO visits SELECT g, 'visit ' || g FROM generate_series(1, 3000) g", "CHECKPOINT")
	run := func(args ...string) string {
		cmd := exec.Command(clinicctl, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("clinicctl %s: %v\n%s", args[0], err, out)
		}
		return string(out)
	}
	run("backup", "--db", c.URL(), "--repo", repo, "--recipient", id.Recipient().String())
	c.MustExec(t, "INSERT INTO visits SELECT g, 'later ' || g FROM generate_series(3001, 4500) g")
	var end string
	conn, err := c.Connect(context.Background(), "postgres")
	if err != nil {
		t.Fatal(err)
	}
	err = conn.QueryRow(context.Background(), "SELECT pg_current_wal_insert_lsn()::text").Scan(&end)
	conn.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	run("stream", "--db", c.URL(), "--repo", repo, "--slot", "clinicbox_v", "--recipient", id.Recipient().String(), "--endpos", end)
	return repo, idFile, env, 4500
}

// A drill runs the PostgreSQL of the repository's version: a PostgreSQL 15
// and a PostgreSQL 17 repository each restore, pass amcheck and hold every
// row. PostgreSQL 15's programs are refused for the 17 repository before
// anything is written, with the version and how to install it.
func TestDrillByServerVersion(t *testing.T) {
	for _, major := range []int{15, 17} {
		t.Run(fmt.Sprint("PostgreSQL ", major), func(t *testing.T) {
			repo, idFile, env, rows := versionedRepo(t, major)
			checks := filepath.Join(filepath.Dir(repo), "checks.sql")
			os.WriteFile(checks, []byte(fmt.Sprintf("count public.visits\nSELECT count(*) = %d FROM visits;\n", rows)), 0o644)
			cmd := exec.Command(clinicctl, "drill", "--repo", repo, "--identity", idFile, "--check-sql", checks)
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("drill: %v\n%s", err, out)
			}
			for _, want := range []string{
				fmt.Sprintf("with PostgreSQL %d.", major),
				"ok     postgres: amcheck: B-tree indexes",
				"ok     postgres: amcheck: table pages",
				fmt.Sprintf("ok     postgres: rows in public.visits  %d", rows),
			} {
				if !strings.Contains(string(out), want) {
					t.Errorf("drill said:\n%s\nwant %q", out, want)
				}
			}
			if major == 17 {
				refuseOtherMajor(t, repo, idFile, env)
			}
		})
	}
}

// refuseOtherMajor drills a PostgreSQL 17 repository with only
// PostgreSQL 15 at hand: it fails at once, naming the version, and writes
// nothing (no report directory, no report in the repository, no scratch).
func refuseOtherMajor(t *testing.T, repo, idFile string, env []string) {
	t.Helper()
	pg15 := "/usr/lib/postgresql/15/bin"
	if _, err := os.Stat(filepath.Join(pg15, "postgres")); err != nil {
		t.Skipf("no PostgreSQL 15 in %s", pg15)
	}
	drills, _ := filepath.Glob(filepath.Join(repo, "drills", "*"))
	reports := filepath.Join(filepath.Dir(repo), "reports")
	cmd := exec.Command(clinicctl, "drill", "--repo", repo, "--identity", idFile, "--pg-bin", pg15, "--report", reports)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	want := "this backup is from PostgreSQL 17, and " + pg15 + " holds PostgreSQL 15, which cannot run it; install postgresql-17"
	if err == nil || !strings.Contains(string(out), want) {
		t.Errorf("drill with PostgreSQL 15: %v\n%s\nwant a failure saying %q", err, out, want)
	}
	if _, err := os.Stat(reports); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused drill made %s (%v)", reports, err)
	}
	if after, _ := filepath.Glob(filepath.Join(repo, "drills", "*")); len(after) != len(drills) {
		t.Errorf("the refused drill wrote reports into the repository: %v, before %v", after, drills)
	}
	if scratch, _ := filepath.Glob(filepath.Join(filepath.Dir(repo), "tmp", "*")); len(scratch) > 0 {
		t.Errorf("the refused drill left %v", scratch)
	}
	// restore refuses the same --pg-bin before writing; without one it
	// names the pg_ctl of the backup's version.
	pgdata := filepath.Join(filepath.Dir(repo), "restored")
	cmd = exec.Command(clinicctl, "restore", "--repo", repo, "--identity", idFile, "--pgdata", pgdata, "--pg-bin", pg15)
	cmd.Env = env
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), want) {
		t.Errorf("restore with PostgreSQL 15: %v\n%s\nwant %q", err, out, want)
	}
	if _, err := os.Stat(pgdata); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused restore made %s (%v)", pgdata, err)
	}
	cmd = exec.Command(clinicctl, "restore", "--repo", repo, "--identity", idFile, "--pgdata", pgdata)
	cmd.Env = env
	out, err = cmd.CombinedOutput()
	if want := "start it with PostgreSQL 17."; err != nil || !strings.Contains(string(out), want) || !strings.Contains(string(out), "/17/bin/pg_ctl -D "+pgdata) {
		t.Errorf("restore: %v\n%s\nwant %q and PostgreSQL 17's pg_ctl", err, out, want)
	}
}
