package main

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/backup"
	"github.com/clinicbox/clinicbox/appliance/signer"
	"github.com/clinicbox/clinicbox/appliance/vault"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
	"github.com/clinicbox/clinicbox/drivers/tailnet"
)

func TestVaultURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"vault", "http://vault:8443"},
		{"vault:9000", "http://vault:9000"},
		{"100.64.0.2", "http://100.64.0.2:8443"},
		{"http://vault.clinic.ts.net:8443", "http://vault.clinic.ts.net:8443"},
	} {
		if got := vaultURL(tc.in); got != tc.want {
			t.Errorf("vaultURL(%q): got %q; want %q", tc.in, got, tc.want)
		}
	}
}

// restorer is the machine restoring after the building burned down; the
// vault is reached over this machine's own Tailscale (plain HTTP here).
type restorer struct{}

func (restorer) WhoIs(context.Context, string) (tailnet.Peer, error) {
	return tailnet.Peer{StableID: "nRESTORE", Node: "restore-laptop", Tags: []string{"tag:clinicrestore"}}, nil
}

// restoreKey writes a recovery key into dir and returns it and its file.
func restoreKey(t *testing.T, dir string) (*age.X25519Identity, string) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "key")
	if err := os.WriteFile(file, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return id, file
}

// serveToRestorer serves the vault in vdir over HTTP, every caller taken
// for the restore laptop, until the test ends.
func serveToRestorer(t *testing.T, vdir string) *httptest.Server {
	t.Helper()
	v, err := vault.New(vault.Config{Dir: vdir}, restorer{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(v)
	t.Cleanup(func() { srv.Close(); v.Close() })
	return srv
}

func TestRestoreFromVault(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{})
	top := t.TempDir()
	id, idFile := restoreKey(t, top)
	vdir := filepath.Join(top, "vault")
	// The vault's namespace holds what the box uploaded: a repository.
	repoDir := filepath.Join(vdir, "boxes", "nBOX", "repo")
	if _, err := backup.Take(context.Background(), backup.Options{DB: c.URL(), Repo: repoDir, Recipients: []string{id.Recipient().String()}, Signer: signer.FromSeed(bytes.Repeat([]byte{3}, 32))}); err != nil {
		t.Fatal(err)
	}
	srv := serveToRestorer(t, vdir)

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"both sources", []string{"--repo", repoDir, "--vault", srv.URL}, "give --repo DIR"},
		{"no source", nil, "give --repo DIR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			args := append([]string{"--identity", idFile, "--pgdata", filepath.Join(top, "x")}, tc.args...)
			err := runRestore(context.Background(), args, &stderr, &stderr)
			if !errors.As(err, &usageError{}) || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("got %v, %q; want a usage error saying %q", err, stderr.String(), tc.want)
			}
		})
	}

	pgdata := filepath.Join(top, "pgdata")
	var stdout, stderr bytes.Buffer
	args := []string{"--vault", srv.URL, "--box", "nBOX", "--identity", idFile, "--pgdata", pgdata, "--latest"}
	if os.Geteuid() == 0 {
		args = append(args, "--owner", "postgres")
	}
	if err := runRestore(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "restored backup") || !strings.Contains(stderr.String(), "from the vault") {
		t.Errorf("got output %q %q; want the fetch and the restore reported", stdout.String(), stderr.String())
	}
	if _, err := os.Stat(filepath.Join(pgdata, "PG_VERSION")); err != nil {
		t.Errorf("restored data directory: %v", err)
	}
	cache, err := archive.OpenFirstUse(pgdata + ".vault")
	if err != nil {
		t.Fatal(err)
	}
	if conf, _ := os.ReadFile(filepath.Join(pgdata, "postgresql.auto.conf")); !strings.Contains(string(conf), cache.Dir) {
		t.Errorf("restore_command does not read the local copy %s:\n%s", cache.Dir, conf)
	}
}

// A vault keeps several backups; a restore fetches only the chain of the
// one it restores and the WAL after it, not every backup.
func TestRestoreFromVaultFetchesOnlyItsChain(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{})
	top := t.TempDir()
	id, idFile := restoreKey(t, top)
	ids := []age.Identity{id}
	vdir := filepath.Join(top, "vault")
	repoDir := filepath.Join(vdir, "boxes", "nBOX", "repo")
	sign := signer.FromSeed(bytes.Repeat([]byte{3}, 32))
	take := func() *archive.Backup {
		t.Helper()
		c.MustExec(t, `CREATE TABLE IF NOT EXISTS visits (id serial PRIMARY KEY, note text)`,
			`INSERT INTO visits (note) SELECT md5(g::text) FROM generate_series(1, 5000) g`)
		b, err := backup.Take(context.Background(), backup.Options{DB: c.URL(), Repo: repoDir, Recipients: []string{id.Recipient().String()}, Signer: sign, Compression: archive.ServerZstd})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b, latest := take(), take(), take()
	// The newest is kept as an incremental on b, as offsite stores it.
	repo, err := archive.OpenFirstUse(repoDir)
	if err != nil {
		t.Fatal(err)
	}
	mb, _, err := repo.MapBackup(b, ids)
	if err != nil {
		t.Fatal(err)
	}
	spool, err := archive.Create(filepath.Join(top, "spool"), repo.Info, sign)
	if err != nil {
		t.Fatal(err)
	}
	inc, _, _, err := spool.WriteIncremental(repo, latest, mb, ids, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(repoDir, "backups", latest.ID)); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(spool.Dir, "backups", inc.ID), filepath.Join(repoDir, "backups", inc.ID)); err != nil {
		t.Fatal(err)
	}
	srv := serveToRestorer(t, vdir)

	for _, tc := range []struct {
		name   string
		target []string
		chain  []*archive.Backup // fetched
		others []*archive.Backup // not fetched
	}{
		{"latest", []string{"--latest"}, []*archive.Backup{b, inc}, []*archive.Backup{a}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pgdata := filepath.Join(top, tc.name)
			var stdout, stderr bytes.Buffer
			args := append([]string{"--vault", srv.URL, "--box", "nBOX", "--identity", idFile, "--pgdata", pgdata}, tc.target...)
			if err := runRestore(context.Background(), args, &stdout, &stderr); err != nil {
				t.Fatalf("%v\n%s", err, stderr.String())
			}
			if want := "restored backup " + tc.chain[len(tc.chain)-1].ID; !strings.Contains(stdout.String(), want) {
				t.Fatalf("got %q; want %q", stdout.String(), want)
			}
			cache := pgdata + ".vault"
			for _, x := range tc.chain {
				if got := archivesIn(t, cache, x); got == 0 {
					t.Errorf("backup %s of the chain was not fetched", x.ID)
				}
			}
			for _, x := range tc.others {
				if got := archivesIn(t, cache, x); got != 0 {
					t.Errorf("backup %s, not in the chain, was fetched (%d archives)", x.ID, got)
				}
			}
			first := uint64(tc.chain[len(tc.chain)-1].StartLSN) / repo.Info.SegmentSize
			segs, _ := filepath.Glob(filepath.Join(cache, "wal", "*", "*.age"))
			for _, s := range segs {
				name := filepath.Base(s)
				hi, err1 := strconv.ParseUint(name[8:16], 16, 64)
				lo, err2 := strconv.ParseUint(name[16:24], 16, 64)
				if n := hi*(1<<32/repo.Info.SegmentSize) + lo; err1 == nil && err2 == nil && !strings.Contains(name, "history") && n < first {
					t.Errorf("WAL %s, before the backup's start, was fetched", name)
				}
			}
		})
	}
}

// archivesIn counts the archives of backup b in a repository directory.
func archivesIn(t *testing.T, dir string, b *archive.Backup) int {
	t.Helper()
	n := 0
	for _, f := range b.Files {
		if _, err := os.Stat(filepath.Join(dir, "backups", b.ID, f.Name)); err == nil && archive.Bulk("backups/"+b.ID+"/"+f.Name) {
			n++
		}
	}
	return n
}
