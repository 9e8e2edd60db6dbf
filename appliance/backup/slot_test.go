package backup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/drivers/postgres"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
)

// A slot's retained WAL and status are visible for alerts, and a second
// client on a slot in use gets an error that says so.
func TestSlotHealthAndSlotInUse(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{Conf: []string{"max_slot_wal_keep_size = '256MB'"}})
	ctx := context.Background()
	recip, _ := testKey(t)
	dir := filepath.Join(t.TempDir(), "repo")
	s := startStream(t, StreamOptions{DB: c.URL(), Repo: dir, Slot: "clinicbox_a", Recipients: []string{recip}, Signer: testSigner})
	c.MustExec(t, "CREATE TABLE x AS SELECT 1")
	s.waitFor(t, 1, currentLSN(t, c, false))
	h, err := postgres.ReadSlotHealth(ctx, c.URL(), "clinicbox_a")
	if err != nil || !h.Exists || !h.Active {
		t.Fatalf("health of the streaming slot = %+v, %v; want existing and active", h, err)
	}
	err = Stream(ctx, StreamOptions{DB: c.URL(), Repo: filepath.Join(t.TempDir(), "other"), Slot: "clinicbox_a", Recipients: []string{recip}, Signer: testSigner})
	if !errors.Is(err, postgres.ErrSlotInUse) {
		t.Errorf("second stream on the slot: got %v; want ErrSlotInUse", err)
	}
	s.stop(t)
	if err := c.PgbenchInit(ctx, 3); err != nil { // about 45 MB of WAL the slot must keep
		t.Fatal(err)
	}
	h, err = postgres.ReadSlotHealth(ctx, c.URL(), "clinicbox_a")
	if err != nil {
		t.Fatal(err)
	}
	if h.Active || h.RetainedBytes < 32<<20 || h.SafeBytes < 0 || h.WALStatus == "" {
		t.Errorf("health of the idle slot = %+v; want inactive, >= 32 MB retained, a safe size under the limit, a status", h)
	}
	if h, _ := postgres.ReadSlotHealth(ctx, c.URL(), "nonexistent"); h.Exists {
		t.Errorf("a missing slot is reported as existing")
	}
}

// A backup of a cluster with an extra tablespace stores it as its own
// archive; it verifies, and pg_verifybackup accepts it unpacked to a new
// location.
func TestBackupWithTablespace(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{})
	ctx := context.Background()
	loc := filepath.Join(c.Dir, "tablespace")
	if err := os.Mkdir(loc, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := c.Chown(loc); err != nil {
		t.Fatal(err)
	}
	c.MustExec(t, "CREATE TABLESPACE clinic_ts LOCATION '"+loc+"'",
		"CREATE TABLE scans TABLESPACE clinic_ts AS SELECT g AS id, md5(g::text) AS img FROM generate_series(1, 20000) g")
	recip, ids := testKey(t)
	dir := filepath.Join(t.TempDir(), "repo")
	b, err := Take(ctx, Options{DB: c.URL(), Repo: dir, Recipients: []string{recip}, Signer: testSigner})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Tablespaces) != 1 || b.Tablespaces[0].Location != loc {
		t.Fatalf("tablespaces %+v; want one at %s", b.Tablespaces, loc)
	}
	repo, err := archive.OpenFirstUse(dir)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := repo.Verify(ctx, archive.VerifyOptions{Identities: ids})
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %v", err, rep.Problems)
	}
	newLoc := filepath.Join(t.TempDir(), "ts")
	tmp := t.TempDir()
	pgdata, walDir := filepath.Join(tmp, "pgdata"), filepath.Join(tmp, "wal")
	if err := repo.Extract(b, pgdata, archive.ExtractOptions{Identities: ids, Tablespaces: map[uint32]string{b.Tablespaces[0].OID: newLoc}}); err != nil {
		t.Fatal(err)
	}
	links, _ := filepath.Glob(filepath.Join(pgdata, "pg_tblspc", "*"))
	if len(links) != 1 {
		t.Fatalf("pg_tblspc holds %v; want one link", links)
	}
	if got, _ := os.Readlink(links[0]); got != newLoc || !dirHasFiles(newLoc) {
		t.Fatalf("tablespace link -> %q (files there: %v); want %s with the tablespace's files", got, dirHasFiles(newLoc), newLoc)
	}
	exportWAL(t, repo, ids, b.Timeline, b.StartLSN, b.EndLSN, walDir)
	verifyWithPostgres(t, c, pgdata, walDir)
}

func dirHasFiles(dir string) bool {
	e, _ := os.ReadDir(dir)
	return len(e) > 0
}
