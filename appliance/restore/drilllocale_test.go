package restore

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
	"github.com/clinicbox/clinicbox/drivers/testenv"
)

// A practice's server names locales in its postgresql.conf and gives its
// databases a collation such as en_US.UTF-8. A drill of a PostgreSQL 15
// and of a PostgreSQL 17 repository from such a server passes where the
// locale is installed; where it is not (LOCPATH pointing at an empty
// directory hides the system's; the box has only the few its image
// carries, cmd/clinicimage's TestDrillOnTheTreesWithLocales), the private
// server still starts, every database with the C locale passes, and the
// one whose collation is missing fails with that locale named.
func TestDrillDatabasesWithLocales(t *testing.T) {
	if out, _ := exec.Command("locale", "-a").Output(); !strings.Contains(strings.ToLower(string(out)), "en_us.utf8") {
		testenv.Skip(t, "the en_US.UTF-8 locale is not generated here (.ci/setup generates it)")
	}
	for _, major := range []int{15, 17} {
		t.Run(fmt.Sprint("PostgreSQL ", major), func(t *testing.T) {
			f := localeSource(t, major)
			tmp := sharedDir(t)
			t.Setenv("TMPDIR", tmp)
			checks := &Checks{Steps: []CheckStep{{Database: "emr", Count: "public.patients"}}}
			rep, err := Drill(context.Background(), DrillOptions{Repo: f.repo(t), Identities: f.ids, IdentityFile: f.idFile,
				Signer: testSigner, FetchProgram: clinicctl, Checks: checks})
			if err != nil || !rep.OK || !strings.HasPrefix(rep.Server, fmt.Sprint(major, ".")) {
				t.Fatalf("drill with the locale installed: %v %q %s %+v; want a pass on PostgreSQL %d", err, rep.Server, rep.Failure, rep.Checks, major)
			}
			t.Setenv("LOCPATH", sharedDir(t))
			rep, err = Drill(context.Background(), DrillOptions{Repo: f.repo(t), Identities: f.ids, IdentityFile: f.idFile,
				Signer: testSigner, FetchProgram: clinicctl, Checks: checks})
			if err != nil || rep.OK || rep.RTO <= 0 {
				t.Fatalf("drill without the locale: %v ok=%v RTO %v %s; want the server up and the drill failed", err, rep.OK, rep.RTO, rep.Failure)
			}
			var postgresOK, emrNamed bool
			for _, c := range rep.Checks {
				postgresOK = postgresOK || strings.HasPrefix(c.Name, "postgres: ") && c.OK
				emrNamed = emrNamed || c.Name == "connect to emr" && !c.OK && strings.Contains(c.Detail, "en_US.UTF-8")
			}
			if !postgresOK || !emrNamed {
				t.Errorf("checks %+v; want the postgres database checked and emr's connection failing with en_US.UTF-8 named", rep.Checks)
			}
		})
	}
}

// localeSource is a server whose postgresql.conf names en_US.UTF-8 for
// messages and formats and whose database emr collates by it, backed up
// and streamed into a repository.
func localeSource(t *testing.T, major int) *fixture {
	t.Helper()
	const loc = "'en_US.UTF-8'"
	c := pgtest.New(t, pgtest.Options{Major: major,
		Conf: []string{"lc_messages = " + loc, "lc_monetary = " + loc, "lc_numeric = " + loc, "lc_time = " + loc}})
	c.MustExec(t, "CREATE DATABASE emr LOCALE "+loc+" ENCODING 'UTF8' TEMPLATE template0")
	f := newFixture(t, c)
	if err := c.ExecIn(context.Background(), "emr", "CREATE TABLE patients (id int PRIMARY KEY, name text); INSERT INTO patients SELECT g, 'Müller ' || g FROM generate_series(1, 500) g; CREATE INDEX ON patients (name)"); err != nil {
		t.Fatal(err)
	}
	c.MustExec(t, "CHECKPOINT")
	f.sync(t, 1)
	f.stop(t)
	return f
}
