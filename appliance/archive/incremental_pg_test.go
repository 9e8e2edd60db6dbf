package archive_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"filippo.io/age"
	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/backup"
	"github.com/clinicbox/clinicbox/appliance/signer"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
)

var incrSigner = signer.FromSeed(bytes.Repeat([]byte{9}, 32))

// incrEnv is a database server, the drive repository its full backups go
// to, and the spool incrementals are written into.
type incrEnv struct {
	c     *pgtest.Cluster
	drive string
	spool *archive.Repo
	recip string
	ids   []age.Identity
}

func newIncrEnv(t *testing.T) *incrEnv {
	t.Helper()
	c := pgtest.New(t, pgtest.Options{})
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return &incrEnv{c: c, drive: filepath.Join(t.TempDir(), "drive"), recip: id.Recipient().String(), ids: []age.Identity{id}}
}

// take runs a full base backup onto the drive.
func (e *incrEnv) take(t *testing.T) (*archive.Repo, *archive.Backup) {
	t.Helper()
	b, err := backup.Take(context.Background(), backup.Options{DB: e.c.URL(), Repo: e.drive, Recipients: []string{e.recip}, Signer: incrSigner, Compression: archive.ServerZstd})
	if err != nil {
		t.Fatal(err)
	}
	r, err := archive.OpenFirstUse(e.drive)
	if err != nil {
		t.Fatal(err)
	}
	if e.spool == nil {
		if e.spool, err = archive.Create(filepath.Join(t.TempDir(), "spool"), r.Info, incrSigner); err != nil {
			t.Fatal(err)
		}
	}
	return r, b
}

// execIn runs statements in database db.
func (e *incrEnv) execIn(t *testing.T, db string, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := e.c.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// extract unpacks backup id of the repository at dir into a new directory.
func (e *incrEnv) extract(t *testing.T, dir, id string) string {
	t.Helper()
	r, err := archive.OpenFirstUse(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Backup(id)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "pgdata")
	if err := r.Extract(b, out, archive.ExtractOptions{Identities: e.ids}); err != nil {
		t.Fatal(err)
	}
	return out
}

// sameTree fails unless two directories hold the same files with the same
// bytes.
func sameTree(t *testing.T, want, got string) {
	t.Helper()
	files := map[string][]byte{}
	filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(want, p)
			files[rel], _ = os.ReadFile(p)
		}
		return err
	})
	n := 0
	filepath.WalkDir(got, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(got, p)
		data, _ := os.ReadFile(p)
		w, ok := files[rel]
		if !ok || !bytes.Equal(w, data) {
			t.Errorf("%s differs from the full backup's (present there: %v)", rel, ok)
		}
		n++
		return nil
	})
	if n != len(files) || n < 900 {
		t.Errorf("restored %d files; the full backup has %d", n, len(files))
	}
}

// A chain of incremental backups of a real PostgreSQL 15 server, across a
// relation truncated, a database dropped and recreated, a table rewritten by
// VACUUM FULL and ordinary updates, sends a fraction of the blocks, and
// restores byte for byte what the server sent for each backup (the full
// backup of the same moment, itself checked against its manifest); the
// repository's verifier checks the chain's rebuilt files against the
// manifests.
func TestIncrementalChainPostgres(t *testing.T) {
	e := newIncrEnv(t)
	e.c.MustExec(t, `CREATE DATABASE clinic`)
	e.execIn(t, "clinic", `CREATE TABLE visits AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g`, `VACUUM`)
	e.c.MustExec(t,
		`CREATE TABLE notes (id int PRIMARY KEY, body text)`,
		`INSERT INTO notes SELECT g, repeat(md5(g::text), 20) FROM generate_series(1, 20000) g`,
		`CREATE TABLE scratch AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 50000) g`,
		`CREATE TABLE rewritten AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 30000) g`,
		`VACUUM`, `CHECKPOINT`) // settled: hint bits and visibility maps set, nothing left for autovacuum
	drive, b1 := e.take(t)
	m1, s1, err := drive.MapBackup(b1, e.ids)
	if err != nil {
		t.Fatal(err)
	}

	e.c.MustExec(t,
		`UPDATE notes SET body = 'seen' WHERE id % 500 = 0`,
		`DELETE FROM scratch WHERE id > 1000`, `VACUUM scratch`, // truncates the relation's file
		`DELETE FROM rewritten WHERE id % 3 = 0`, `VACUUM FULL rewritten`, // a new relfilenode
		`DROP DATABASE clinic`, `CREATE DATABASE clinic STRATEGY FILE_COPY`)
	e.execIn(t, "clinic", `CREATE TABLE visits AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g`, `VACUUM`)
	e.c.MustExec(t, `VACUUM`, `CHECKPOINT`)
	drive, b2 := e.take(t)
	// One that would not fit the spool is abandoned, leaving nothing.
	if _, _, _, err := e.spool.WriteIncremental(drive, b2, m1, e.ids, 64<<10); !errors.Is(err, archive.ErrTooLarge) {
		t.Fatalf("an incremental over the limit: got %v; want ErrTooLarge", err)
	}
	if left, _ := os.ReadDir(filepath.Join(e.spool.Dir, "backups")); len(left) != 0 {
		t.Fatalf("an abandoned incremental left %v in the spool", left)
	}
	i2, m2, s2, err := e.spool.WriteIncremental(drive, b2, m1, e.ids, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The recreated database's files (under a new OID) and the rewritten
	// table are sent whole; the rest is copied.
	if s2.Sent*10 > s2.Blocks*6 {
		t.Errorf("the first incremental sent %d of %d blocks; want at most 60 %%", s2.Sent, s2.Blocks)
	}
	t.Logf("full: %d blocks; incremental 1: sent %d of %d blocks (%d bytes)", s1.Blocks, s2.Sent, s2.Blocks, s2.Bytes)

	e.c.MustExec(t, `UPDATE notes SET body = 'again' WHERE id % 700 = 0`, `CHECKPOINT`)
	drive, b3 := e.take(t)
	i3, _, s3, err := e.spool.WriteIncremental(drive, b3, m2, e.ids, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("incremental 2: sent %d of %d blocks (%d bytes)", s3.Sent, s3.Blocks, s3.Bytes)
	if s3.Sent*20 > s3.Blocks {
		t.Errorf("an incremental after a few updates sent %d of %d blocks; want at most 5 %%", s3.Sent, s3.Blocks)
	}
	if i2.Kind != archive.KindIncremental || i3.Parent != i2.ID || i2.Parent != b1.ID {
		t.Fatalf("chain: %s(%s) <- %s(%s)", i2.ID, i2.Parent, i3.ID, i3.Parent)
	}

	// The vault's copy: the drive's full and WAL, the spool's incrementals.
	vault := filepath.Join(t.TempDir(), "vault")
	if err := os.CopyFS(vault, os.DirFS(e.drive)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{b2.ID, b3.ID} {
		dst := filepath.Join(vault, "backups", id)
		os.RemoveAll(dst)
		if err := os.CopyFS(dst, os.DirFS(filepath.Join(e.spool.Dir, "backups", id))); err != nil {
			t.Fatal(err)
		}
	}
	vr, err := archive.OpenFirstUse(vault)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := vr.Verify(context.Background(), archive.VerifyOptions{Identities: e.ids})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("verify of the chain: %v", rep.Problems)
	}
	for _, b := range []*archive.Backup{b2, b3} {
		sameTree(t, e.extract(t, e.drive, b.ID), e.extract(t, vault, b.ID))
	}
	got, err := vr.StoredBlockMap(i3, e.ids)
	if err != nil || got.Backup != b3.ID || got.Blocks() != s3.Blocks {
		t.Errorf("the block map the incremental carries: %v, %d blocks; want %d", err, got.Blocks(), s3.Blocks)
	}
}

// A block map damaged on /perm is refused when it is loaded, before any
// incremental is built on it.
func TestDamagedBlockMapRefused(t *testing.T) {
	m := &archive.BlockMap{Backup: "20261203T100000Z", Files: []archive.MapFile{{Archive: "base.tar", Path: "base/1/1", Size: 3, Hashes: make([]byte, 16)}}}
	p := filepath.Join(t.TempDir(), "perm", "blockmap")
	if err := archive.SaveBlockMap(p, m); err != nil {
		t.Fatal(err)
	}
	if _, err := archive.LoadBlockMap(p, m.Backup); err != nil {
		t.Fatal(err)
	}
	if _, err := archive.LoadBlockMap(p, "20261204T100000Z"); !errors.Is(err, archive.ErrBlockMap) {
		t.Errorf("a map of another backup: got %v; want ErrBlockMap", err)
	}
	data, _ := os.ReadFile(p)
	data[len(data)/2] ^= 1
	os.WriteFile(p, data, 0o600)
	if _, err := archive.LoadBlockMap(p, m.Backup); !errors.Is(err, archive.ErrBlockMap) {
		t.Errorf("a flipped bit: got %v; want ErrBlockMap", err)
	}
}
