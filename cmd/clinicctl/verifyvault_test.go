package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/backup"
	"github.com/clinicbox/clinicbox/appliance/signer"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
)

// chainRepo fills repoDir with a chain as the vault holds one: a full
// backup and two incremental ones, each built against the block map of
// the one before, as the box builds them on /perm; it returns the
// full backup's ID and the incrementals'.
func chainRepo(t *testing.T, c *pgtest.Cluster, repoDir string, id *age.X25519Identity, k *signer.Key) (string, []string) {
	t.Helper()
	ctx := context.Background()
	ids := []age.Identity{id}
	c.MustExec(t, `CREATE TABLE notes AS SELECT g AS id, md5(g::text) AS body FROM generate_series(1, 20000) g`, `VACUUM`, `CHECKPOINT`)
	opts := backup.Options{DB: c.URL(), Repo: repoDir, Recipients: []string{id.Recipient().String()}, Signer: k}
	prev, err := backup.Take(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := archive.Open(repoDir)
	if err != nil {
		t.Fatal(err)
	}
	repo.Trust(k.Public())
	parent, _, err := repo.MapBackup(prev, ids)
	if err != nil {
		t.Fatal(err)
	}
	first, incs := prev.ID, []string{}
	for i := range 2 {
		c.MustExec(t, "UPDATE notes SET body = 'changed' WHERE id % 97 = "+strconv.Itoa(i), `CHECKPOINT`)
		b, err := backup.Take(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		full, _, err := repo.MapBackup(b, ids)
		if err != nil {
			t.Fatal(err)
		}
		spool, err := archive.Create(filepath.Join(t.TempDir(), "spool"), repo.Info, k)
		if err != nil {
			t.Fatal(err)
		}
		inc, _, _, err := spool.WriteIncremental(repo, b, parent, ids, 0)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(repoDir, "backups", inc.ID)
		os.RemoveAll(dst)
		if err := os.CopyFS(dst, os.DirFS(filepath.Join(spool.Dir, "backups", inc.ID))); err != nil {
			t.Fatal(err)
		}
		incs, parent = append(incs, inc.ID), full
	}
	// One more backup, whose WAL ends in the newest partial segment: a
	// vault cuts that segment back to what its own index acknowledges,
	// and this repository was written beside the vault, not through it.
	if _, err := backup.Take(ctx, opts); err != nil {
		t.Fatal(err)
	}
	return first, incs
}

// clinicctl verify --vault checks a chain the vault holds (a full backup
// and two incrementals, each rebuilt through its chain against its
// manifest), restore --vault brings back the chain's end matching its
// manifest, and verify finds a delta altered in the middle of the chain.
func TestVerifyAndRestoreChainFromVault(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{})
	top := t.TempDir()
	id, idFile := restoreKey(t, top)
	vdir := filepath.Join(top, "vault")
	repoDir := filepath.Join(vdir, "boxes", "nBOX", "repo")
	k := signer.FromSeed(bytes.Repeat([]byte{3}, 32))
	full, incs := chainRepo(t, c, repoDir, id, k)
	srv := serveToRestorer(t, vdir)

	// The chain's backups are checked one by one: the last backup's WAL
	// is cut by the vault (see chainRepo).
	verify := func() string {
		var out bytes.Buffer
		runVerify(context.Background(), []string{"--vault", srv.URL, "--box", "nBOX", "--identity", idFile, "--box-key", k.Public().String()}, &out, &out)
		return out.String()
	}
	out := verify()
	for _, id := range append([]string{full}, incs...) {
		if !strings.Contains(out, "backup "+id+": ok") {
			t.Errorf("verify --vault did not pass backup %s of the chain:\n%s", id, out)
		}
	}

	// The chain's end restores from the vault, and its data directory
	// holds every file of the backup's manifest, size and CRC32C (only the
	// configuration the restore writes differs).
	repo, err := archive.Open(repoDir)
	if err != nil {
		t.Fatal(err)
	}
	repo.Trust(k.Public())
	end, err := repo.Backup(incs[1])
	if err != nil {
		t.Fatal(err)
	}
	pgdata := filepath.Join(top, "pgdata")
	args := []string{"--vault", srv.URL, "--box", "nBOX", "--identity", idFile, "--box-key", k.Public().String(), "--pgdata", pgdata, "--to-lsn", end.EndLSN.String()}
	if os.Geteuid() == 0 {
		args = append(args, "--owner", "postgres")
	}
	var rout bytes.Buffer
	if err := runRestore(context.Background(), args, &rout, &rout); err != nil || !strings.Contains(rout.String(), "restored backup "+end.ID) {
		t.Fatalf("restore --vault of the chain's end %s: %v\n%s", end.ID, err, rout.String())
	}
	m, err := repo.Manifest(end, []age.Identity{id})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range archive.CheckTree(pgdata, m) {
		if !strings.Contains(bad, "postgresql.auto.conf") {
			t.Errorf("restored from the chain: %s", bad)
		}
	}

	// One byte of the first incremental's delta altered in the vault: it
	// and the incremental built on it fail.
	deltas, _ := filepath.Glob(filepath.Join(repoDir, "backups", incs[0], "base.tar.delta*"))
	if len(deltas) != 1 {
		t.Fatalf("deltas of %s: %v", incs[0], deltas)
	}
	data, _ := os.ReadFile(deltas[0])
	data[len(data)/2] ^= 1
	os.WriteFile(deltas[0], data, 0o600)
	out = verify()
	for _, id := range incs {
		if !strings.Contains(out, "backup "+id+": FAILED") {
			t.Errorf("verify --vault passed backup %s, whose chain holds an altered delta:\n%s", id, out)
		}
	}
}
