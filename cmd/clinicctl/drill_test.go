package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/clinicbox/clinicbox/appliance/backup"
	"github.com/clinicbox/clinicbox/appliance/signer"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
)

// A backup with a tablespace the source still uses: restore without
// --tablespace puts it inside --pgdata and says how to put it elsewhere;
// drill --report creates its directory and leaves the source's tablespace
// as it was.
func TestTablespaceRestoreAndDrillReport(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{Conf: []string{"autovacuum = off"}})
	top, err := os.MkdirTemp("", "clinicctl-drill-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(top) })
	os.Chmod(top, 0o755) // the drill's server reads the repository
	loc := filepath.Join(top, "ts")
	os.Mkdir(loc, 0o700)
	if err := c.Chown(loc); err != nil {
		t.Fatal(err)
	}
	c.MustExec(t, "CREATE TABLESPACE scans LOCATION '"+loc+"'", "CREATE TABLE scans TABLESPACE scans AS SELECT 1 AS id", "CHECKPOINT")
	id, _ := age.GenerateX25519Identity()
	idFile, repo := filepath.Join(top, "key"), filepath.Join(top, "repo")
	os.WriteFile(idFile, []byte(id.String()+"\n"), 0o600)
	if _, err := backup.Take(context.Background(), backup.Options{DB: c.URL(), Repo: repo, Recipients: []string{id.Recipient().String()}, Signer: signer.FromSeed(bytes.Repeat([]byte{3}, 32))}); err != nil {
		t.Fatal(err)
	}
	before, _ := exec.Command("find", loc, "-printf", "%p %s %T@\n").CombinedOutput()

	var stdout, stderr bytes.Buffer
	pgdata := filepath.Join(top, "restored")
	if err := runRestore(context.Background(), []string{"--repo", repo, "--identity", idFile, "--pgdata", pgdata}, &stdout, &stderr); err != nil {
		t.Fatalf("restore: %v\n%s", err, stderr.String())
	}
	if want := "--tablespace " + loc + "=DIR"; !strings.Contains(stdout.String(), want) || !strings.Contains(stdout.String(), filepath.Join(pgdata, "pg_tblspc_data")) {
		t.Errorf("restore said %q; want where the tablespace went inside %s and %q", stdout.String(), pgdata, want)
	}

	reports := filepath.Join(top, "reports", "2026")
	out, err := exec.Command(clinicctl, "drill", "--repo", repo, "--identity", idFile, "--report", reports).CombinedOutput()
	if err != nil {
		t.Fatalf("drill: %v\n%s", err, out)
	}
	if got, _ := filepath.Glob(filepath.Join(reports, "drill-*")); len(got) != 2 {
		t.Errorf("report directory holds %v; want the JSON and HTML reports", got)
	}
	if after, _ := exec.Command("find", loc, "-printf", "%p %s %T@\n").CombinedOutput(); !bytes.Equal(before, after) {
		t.Errorf("the source's tablespace changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
