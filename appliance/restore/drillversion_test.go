package restore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clinicbox/clinicbox/drivers/postgres/pgbin"
)

// A drill of a PostgreSQL 15 and of a PostgreSQL 17 repository, each with
// a tablespace in its backup and one created by the WAL, while the source
// still runs on both: it passes with the repository's own version, every
// tablespace lies inside the drill's scratch directory, and nothing is
// left anywhere once it ends (the scratch directory is gone, the source's
// tablespace directories are as they were). With only PostgreSQL 15 at
// hand, the 17 repository is refused before anything is written.
func TestDrillTablespacesByVersion(t *testing.T) {
	for _, major := range []int{15, 17} {
		t.Run(fmt.Sprint("PostgreSQL ", major), func(t *testing.T) {
			f, inBackup, created := tablespaceSource(t, major)
			before := snapshot(t, inBackup) + snapshot(t, created)
			tmp := sharedDir(t)
			t.Setenv("TMPDIR", tmp) // where the drill makes its scratch directory
			checks := &Checks{Steps: []CheckStep{{Database: "postgres",
				SQL: "SELECT spcname || '=' || pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname LIKE 'ts_%' ORDER BY 1;"}}}
			rep, err := Drill(context.Background(), DrillOptions{Repo: f.repo(t), Identities: f.ids, IdentityFile: f.idFile,
				Signer: testSigner, FetchProgram: clinicctl, Checks: checks})
			if err != nil || !rep.OK {
				t.Fatalf("drill: %v %s %+v; want it to pass", err, rep.Failure, rep.Checks)
			}
			if !strings.HasPrefix(rep.Server, fmt.Sprint(major, ".")) {
				t.Errorf("drilled with PostgreSQL %q; want %d", rep.Server, major)
			}
			var where string
			for _, c := range rep.Checks {
				if strings.Contains(c.Name, "pg_tablespace_location") {
					where = c.Detail
				}
			}
			for _, name := range []string{"ts_backup", "ts_created"} {
				if !strings.Contains(where, name+"="+tmp+"/clinicbox-drill-") {
					t.Errorf("tablespaces were at %q; want %s inside the scratch directory under %s", where, name, tmp)
				}
			}
			if left, _ := os.ReadDir(tmp); len(left) > 0 {
				t.Errorf("the drill left %v in %s", left, tmp)
			}
			if after := snapshot(t, inBackup) + snapshot(t, created); after != before {
				t.Errorf("the source's tablespace directories changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if major == 17 {
				drillWithout17(t, f, tmp)
			}
		})
	}
}

// drillWithout17 drills the PostgreSQL 17 repository where only the 15
// layout is searched: the error and the report name the version and how
// to install it, and nothing is written.
func drillWithout17(t *testing.T, f *fixture, tmp string) {
	t.Helper()
	search := pgbin.Search{Layouts: []string{"/usr/lib/postgresql/%d/bin"}, NoPath: true}
	if _, err := search.Find(context.Background(), 15); err != nil {
		t.Skipf("no PostgreSQL 15: %v", err)
	}
	drills, _ := filepath.Glob(filepath.Join(f.dir, "drills", "*"))
	rep, err := Drill(context.Background(), DrillOptions{Repo: f.repo(t), Identities: f.ids, IdentityFile: f.idFile,
		Signer: testSigner, FetchProgram: clinicctl, Search: search, Save: true})
	want := "this backup is from PostgreSQL 17; it is not installed here (looked in /usr/lib/postgresql/17/bin); install postgresql-17"
	if !errors.Is(err, pgbin.ErrMissing) || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v; want ErrMissing saying %q", err, want)
	}
	if rep == nil || rep.OK || !strings.Contains(rep.Failure, want) || rep.VerifySignature(testSigner.Public()) != nil {
		t.Errorf("report %+v; want a signed failed report saying %q", rep, want)
	}
	if after, _ := filepath.Glob(filepath.Join(f.dir, "drills", "*")); len(after) != len(drills) {
		t.Errorf("the refused drill saved reports: %v, before %v", after, drills)
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("the refused drill left %v in %s", left, tmp)
	}
}

// A server is never started on a data directory of another major version.
func TestStartServerRefusesOtherMajor(t *testing.T) {
	pgdata := t.TempDir()
	os.WriteFile(filepath.Join(pgdata, "PG_VERSION"), []byte("17\n"), 0o600)
	_, err := StartServerWith(context.Background(), ServerConfig{PGData: pgdata, SockDir: pgdata, UID: -1, GID: -1,
		Bin: pgbin.Bin{Dir: "/usr/lib/postgresql/15/bin", Major: 15}})
	if err == nil || !strings.Contains(err.Error(), "is a PostgreSQL 17 data directory; the programs in /usr/lib/postgresql/15/bin are PostgreSQL 15") {
		t.Errorf("got %v; want a refusal naming both versions", err)
	}
	_, err = StartServerWith(context.Background(), ServerConfig{PGData: pgdata, SockDir: pgdata, UID: -1, GID: -1,
		Search: pgbin.Search{Layouts: []string{filepath.Join(pgdata, "%d")}, NoPath: true}})
	if !errors.Is(err, pgbin.ErrMissing) {
		t.Errorf("got %v; want ErrMissing for PostgreSQL 17", err)
	}
}
