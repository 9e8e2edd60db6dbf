package backup

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
	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/drivers/postgres"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
	"github.com/clinicbox/clinicbox/drivers/testenv"
)

func fmtSeg(tli uint32, hi, lo uint64) string { return fmt.Sprintf("%08X%08X%08X", tli, hi, lo) }

// A base backup taken under load verifies with our verifier and with
// PostgreSQL's pg_verifybackup on a decrypted, unpacked copy, for every
// compression mode.
func TestBackupUnderLoadVerifies(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{})
	ctx := context.Background()
	if err := c.PgbenchInit(ctx, 10); err != nil {
		t.Fatal(err)
	}
	load(t, c, "2")
	recip, ids := testKey(t)
	repoDir := filepath.Join(t.TempDir(), "repo")
	for _, comp := range []archive.Compression{archive.ServerZstd, archive.ClientZstd, archive.NoCompress} {
		t.Run(string(comp), func(t *testing.T) {
			var lastDone int64
			b, err := Take(ctx, Options{DB: c.URL(), Repo: repoDir, Recipients: []string{recip}, Signer: testSigner, Compression: comp,
				Progress: func(done, total int64) { lastDone = done }})
			if err != nil {
				t.Fatal(err)
			}
			if lastDone == 0 {
				t.Errorf("progress never reported bytes")
			}
			repo, err := archive.OpenFirstUse(repoDir)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := repo.Verify(ctx, archive.VerifyOptions{Identities: ids, Backup: b.ID, Record: true})
			if err != nil {
				t.Fatal(err)
			}
			if !rep.OK() {
				t.Fatalf("verify: %v", rep.Problems)
			}
			if rep.Backups[0].Files < 900 {
				t.Errorf("manifest lists %d files; want a whole cluster", rep.Backups[0].Files)
			}
			pgVerifyBackup(t, c, repo, b, ids)
			if got, _ := repo.Backup(b.ID); !got.Good() {
				t.Errorf("backup %s not recorded as verified", b.ID)
			}
		})
	}
}

// pgVerifyBackup unpacks a backup and its WAL and runs pg_verifybackup.
func pgVerifyBackup(t *testing.T, c *pgtest.Cluster, repo *archive.Repo, b *archive.Backup, ids []age.Identity) {
	t.Helper()
	dir := t.TempDir()
	pgdata, walDir := filepath.Join(dir, "pgdata"), filepath.Join(dir, "wal")
	if err := repo.Extract(b, pgdata, archive.ExtractOptions{Identities: ids}); err != nil {
		t.Fatal(err)
	}
	exportWAL(t, repo, ids, b.Timeline, b.StartLSN, b.EndLSN, walDir)
	verifyWithPostgres(t, c, pgdata, walDir)
}

// verifyWithPostgres runs PostgreSQL's own pg_verifybackup.
func verifyWithPostgres(t *testing.T, c *pgtest.Cluster, pgdata, walDir string) {
	t.Helper()
	out, err := exec.Command(filepath.Join(c.BinDir, "pg_verifybackup"), "-w", walDir, pgdata).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_verifybackup: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "successfully verified") {
		t.Errorf("pg_verifybackup said %q", out)
	}
}

// Bad credentials, a role without REPLICATION and a repository of another
// database system give errors that say what to do, and write nothing.
func TestErrorsWriteNothing(t *testing.T) {
	a := pgtest.New(t, pgtest.Options{})
	b := pgtest.New(t, pgtest.Options{})
	recip, _ := testKey(t)
	ctx := context.Background()
	otherRepo := filepath.Join(t.TempDir(), "repo-a")
	if _, err := Take(ctx, Options{DB: a.URL(), Repo: otherRepo, Recipients: []string{recip}, Signer: testSigner}); err != nil {
		t.Fatal(err)
	}
	before := listFiles(t, otherRepo)
	for _, tc := range []struct {
		name, db, repo, want string
	}{
		{"wrong password", b.URLFor(pgtest.ReplUser, "not-the-password"), "", "password"},
		{"no replication", b.URLFor(pgtest.PlainUser, pgtest.ReplPassword), "", "ALTER ROLE frontdesk REPLICATION"},
		{"nobody listening", "postgres://clinicbox:x@127.0.0.1:1/postgres", "", "cannot reach PostgreSQL"},
		{"other system", b.URL(), otherRepo, "another database system"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := tc.repo
			if repo == "" {
				repo = filepath.Join(t.TempDir(), "repo")
			}
			_, err := Take(ctx, Options{DB: tc.db, Repo: repo, Recipients: []string{recip}, Signer: testSigner})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v; want one mentioning %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "not-the-password") || strings.Contains(err.Error(), pgtest.ReplPassword) {
				t.Errorf("error leaks a password: %v", err)
			}
			if tc.repo == "" {
				if _, err := os.Stat(repo); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("repository directory was created")
				}
			}
		})
	}
	if after := listFiles(t, otherRepo); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("repository of another system changed:\nbefore %v\nafter  %v", before, after)
	}
	var pe *postgres.Error
	_, err := Take(ctx, Options{DB: b.URLFor(pgtest.PlainUser, pgtest.ReplPassword), Repo: t.TempDir(), Recipients: []string{recip}, Signer: testSigner})
	if !errors.As(err, &pe) || pe.Fix == "" {
		t.Errorf("got %T %v; want a *postgres.Error with a fix", err, err)
	}
}

func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !strings.HasSuffix(p, ".lock-wal") {
			out = append(out, strings.TrimPrefix(p, dir)+fmt.Sprint(fi.Size()))
		}
		return nil
	})
	return out
}

func TestMain(m *testing.M) {
	if _, err := pgtest.BinDir(); err != nil && !testenv.RequireAll() {
		fmt.Println("PostgreSQL not installed: integration tests will skip")
	}
	os.Exit(m.Run())
}
