package restore

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/backup"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
)

// A restore from a chain (a full backup and an incremental one on it, as
// the vault holds them) rebuilds the data directory, checks it against the
// incremental's manifest, replays WAL to the latest, and holds exactly the
// source's rows.
func TestRestoreFromChain(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{})
	ctx := context.Background()
	c.MustExec(t, `CREATE TABLE notes AS SELECT g AS id, md5(g::text) AS body FROM generate_series(1, 50000) g`, `VACUUM`, `CHECKPOINT`)
	f := newFixture(t, c) // streams WAL and takes the full backup
	drive := f.repo(t)
	backups, _, err := drive.Backups()
	if err != nil || len(backups) != 1 {
		t.Fatalf("backups: %v, %v", backups, err)
	}
	full := backups[0]
	parent, _, err := drive.MapBackup(full, f.ids)
	if err != nil {
		t.Fatal(err)
	}

	c.MustExec(t, `UPDATE notes SET body = 'changed' WHERE id % 997 = 0`, `DELETE FROM notes WHERE id > 49000`, `CHECKPOINT`)
	b2, err := backup.Take(ctx, backup.Options{DB: c.URL(), Repo: f.dir, Recipients: drive.Info.Recipients, Signer: testSigner, Streamed: true})
	if err != nil {
		t.Fatal(err)
	}
	spool, err := archive.Create(filepath.Join(t.TempDir(), "spool"), drive.Info, testSigner)
	if err != nil {
		t.Fatal(err)
	}
	inc, _, stats, err := spool.WriteIncremental(drive, b2, parent, f.ids, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("incremental: %d of %d blocks sent", stats.Sent, stats.Blocks)
	// The repository holds the chain in place of the second full backup.
	dst := filepath.Join(f.dir, "backups", inc.ID)
	os.RemoveAll(dst)
	if err := os.CopyFS(dst, os.DirFS(filepath.Join(spool.Dir, "backups", inc.ID))); err != nil {
		t.Fatal(err)
	}

	c.MustExec(t, `INSERT INTO notes VALUES (60000, 'after the incremental')`)
	const digest = `SELECT count(*)::text || md5(string_agg(id::text || body, ',' ORDER BY id)) FROM notes`
	var want string
	queryRow(t, c, digest, &want)
	f.sync(t, 1)
	f.stop(t)

	srv, err := f.restoreAndStart(t, f.dir, Target{})
	if err != nil {
		t.Fatal(err)
	}
	var got string
	conn := connect(t, srv.Connect)
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, digest).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("restored notes %s; the source had %s", got, want)
	}
}
