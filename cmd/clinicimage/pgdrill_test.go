package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/backup"
	"github.com/clinicbox/clinicbox/appliance/restore"
	"github.com/clinicbox/clinicbox/appliance/signer"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
	"github.com/clinicbox/clinicbox/drivers/testenv"
)

// A drill on the image's trees (this machine's architecture, both major
// versions), with the programs and locales found as the box finds them,
// passes for a repository whose database collates by en_US.UTF-8. Once
// the practice adds a database in a locale the trees lack (de_DE.UTF-8),
// the next drill fails with that locale named, and the en_US.UTF-8
// database still passes its checks. The practice's server runs with a
// LOCPATH of its own that has de_DE.UTF-8; the drill's server must not
// use it.
func TestDrillOnTheTreesWithLocales(t *testing.T) {
	testenv.NeedRoot(t) // the drill's server runs as the postgres user
	trees, uid, gid := builtPGTrees(t, runtime.GOARCH)
	fetch := buildClinicctl(t)
	for _, major := range trees.Majors {
		t.Run(fmt.Sprint(major), func(t *testing.T) {
			b, err := treeSearch(trees).Find(context.Background(), major)
			if err != nil {
				t.Fatal(err)
			}
			dir := testenv.SharedDir(t)
			t.Setenv("LOCPATH", lackingLocales(t, b.Locales, dir, uid, gid))
			src := localeSource(t, major, dir, uid, gid)
			drill := func() *restore.Report {
				t.Helper()
				src.take(t)
				repo, err := archive.OpenFirstUse(src.repo)
				if err != nil {
					t.Fatal(err)
				}
				rep, err := restore.Drill(context.Background(), restore.DrillOptions{Repo: repo, Identities: []age.Identity{src.id},
					IdentityFile: src.idFile, Signer: drillSigner, FetchProgram: fetch, Search: treeSearch(trees), ScratchParent: dir,
					Checks: &restore.Checks{Steps: []restore.CheckStep{{Database: "emr", Count: "public.patients"}}}})
				if err != nil {
					t.Fatalf("drill: %v", err)
				}
				return rep
			}
			if rep := drill(); !rep.OK || !strings.HasPrefix(rep.Server, fmt.Sprint(major, ".")) {
				t.Fatalf("drill of en_US.UTF-8: ok=%v %q %s %+v; want a pass on PostgreSQL %d", rep.OK, rep.Server, rep.Failure, rep.Checks, major)
			}
			src.c.MustExec(t, "CREATE DATABASE lacking LOCALE 'de_DE.UTF-8' TEMPLATE template0")
			rep := drill()
			var emrOK, named bool
			for _, c := range rep.Checks {
				emrOK = emrOK || c.Name == "emr: rows in public.patients" && c.OK
				named = named || c.Name == "connect to lacking" && !c.OK && strings.Contains(c.Detail, "de_DE.UTF-8")
			}
			if rep.OK || !emrOK || !named {
				t.Errorf("drill with a de_DE.UTF-8 database: ok=%v %+v; want a failure naming de_DE.UTF-8 and emr passing", rep.OK, rep.Checks)
			}
		})
	}
}

// drillSigner signs the test's repositories and reports.
var drillSigner = signer.FromSeed(bytes.Repeat([]byte{9}, 32))

// localeDB is a practice's server with a database emr collating by
// en_US.UTF-8, and the repository its backups go to.
type localeDB struct {
	c            *pgtest.Cluster
	repo, idFile string
	id           *age.X25519Identity
}

// localeSource starts the practice's server with emr in en_US.UTF-8; its
// repository and key file are in dir.
func localeSource(t *testing.T, major int, dir string, uid, gid int) *localeDB {
	t.Helper()
	c := pgtest.New(t, pgtest.Options{Major: major})
	c.MustExec(t, "CREATE DATABASE emr LOCALE 'en_US.UTF-8' TEMPLATE template0")
	if err := c.ExecIn(context.Background(), "emr", "CREATE TABLE patients (id int PRIMARY KEY, name text); INSERT INTO patients SELECT g, 'Müller ' || g FROM generate_series(1, 500) g; CREATE INDEX ON patients (name)"); err != nil {
		t.Fatal(err)
	}
	id, _ := age.GenerateX25519Identity()
	s := &localeDB{c: c, repo: filepath.Join(dir, "repo"), idFile: filepath.Join(dir, "key"), id: id}
	if err := os.WriteFile(s.idFile, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chown(s.idFile, uid, gid) // restore_command runs as the server's user
	return s
}

// take backs the server up into the repository, with the WAL it needs.
func (s *localeDB) take(t *testing.T) {
	t.Helper()
	_, err := backup.Take(context.Background(), backup.Options{DB: s.c.URL(), Repo: s.repo,
		Recipients: []string{s.id.Recipient().String()}, Signer: drillSigner})
	if err != nil {
		t.Fatal(err)
	}
}

// buildClinicctl builds clinicctl, restore_command's program, where the
// drill's server user can run it.
func buildClinicctl(t *testing.T) string {
	t.Helper()
	prog := filepath.Join(testenv.SharedDir(t), "clinicctl")
	if out, err := exec.Command("go", "build", "-o", prog, clinicctlPkg).CombinedOutput(); err != nil {
		t.Fatalf("go build clinicctl: %v\n%s", err, out)
	}
	return prog
}
