package restore

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/backup"
	"github.com/clinicbox/clinicbox/drivers/postgres"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgbin"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
	"github.com/clinicbox/clinicbox/drivers/testenv"
)

var clinicctl string // restore_command's program, built by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "clinicbox-restore-test-")
	if err != nil {
		panic(err)
	}
	os.Chmod(dir, 0o755)
	clinicctl = filepath.Join(dir, "clinicctl")
	if out, err := exec.Command("go", "build", "-o", clinicctl, "github.com/clinicbox/clinicbox/cmd/clinicctl").CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// sharedDir makes a temporary directory the server's unprivileged user can
// reach (t.TempDir's parents are private to root).
func sharedDir(t *testing.T) string { t.Helper(); return testenv.SharedDir(t) }

// fixture is a source database streaming into a repository.
type fixture struct {
	*backup.Flushes
	c      *pgtest.Cluster
	dir    string
	ids    []age.Identity
	idFile string
	cancel context.CancelFunc
	ended  chan struct{}
	err    error
}

func newFixture(t *testing.T, c *pgtest.Cluster) *fixture {
	t.Helper()
	id, _ := age.GenerateX25519Identity()
	f := &fixture{Flushes: backup.NewFlushes(), c: c, dir: filepath.Join(sharedDir(t), "repo"), ids: []age.Identity{id}, ended: make(chan struct{})}
	keyDir := sharedDir(t)
	f.idFile = filepath.Join(keyDir, "key")
	os.WriteFile(f.idFile, []byte(id.String()+"\n"), 0o600)
	if uid, gid, _ := pgbin.ServerUser(); uid >= 0 {
		os.Chown(f.idFile, uid, gid) // restore_command runs as the server's user
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go func() {
		f.err = backup.Stream(ctx, backup.StreamOptions{DB: c.URL(), Repo: f.dir, Slot: "clinicbox_drive",
			Recipients: []string{id.Recipient().String()}, Signer: testSigner, OnFlush: f.Record})
		close(f.ended)
	}()
	t.Cleanup(func() { f.stop(t) })
	if _, err := backup.Take(context.Background(), backup.Options{DB: c.URL(), Repo: f.dir, Recipients: []string{id.Recipient().String()}, Signer: testSigner}); err != nil {
		t.Fatal(err)
	}
	return f
}

// sync waits until everything the server has written is stored.
func (f *fixture) sync(t *testing.T, tli uint32) {
	t.Helper()
	f.waitFor(t, tli, lsnNow(t, f.c))
}

// waitFor waits until WAL up to want on timeline tli is stored.
func (f *fixture) waitFor(t *testing.T, tli uint32, want postgres.LSN) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := f.Wait(ctx, tli, want, f.ended, func() error { return f.err }); err != nil {
		t.Fatalf("WAL up to %s not stored: %v", want, err)
	}
}

func (f *fixture) stop(t *testing.T) {
	if f.cancel != nil {
		f.cancel()
		f.cancel = nil
		<-f.ended
		if f.err != nil {
			t.Errorf("stream: %v", f.err)
		}
	}
}

func (f *fixture) repo(t *testing.T) *archive.Repo {
	t.Helper()
	r, err := archive.OpenFirstUse(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func lsnNow(t *testing.T, c *pgtest.Cluster) postgres.LSN {
	t.Helper()
	l, err := c.CurrentLSN(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func queryRow(t *testing.T, c *pgtest.Cluster, sql string, dest ...any) {
	t.Helper()
	ctx := context.Background()
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, sql).Scan(dest...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// restoreAndStart restores the repository to a target and starts it.
func (f *fixture) restoreAndStart(t *testing.T, repoDir string, target Target) (*Server, error) {
	t.Helper()
	uid, gid, err := pgbin.ServerUser()
	if err != nil {
		t.Fatal(err)
	}
	top := sharedDir(t)
	if uid >= 0 {
		os.Chown(top, uid, gid)
	}
	repo, err := archive.OpenFirstUse(repoDir)
	if err != nil {
		t.Fatal(err)
	}
	pgdata := filepath.Join(top, "pgdata")
	if _, err := Run(context.Background(), Options{Repo: repo, Identities: f.ids, IdentityFile: f.idFile, PGData: pgdata,
		Target: target, FetchProgram: clinicctl, OwnerUID: uid, OwnerGID: gid}); err != nil {
		return nil, err
	}
	srv, err := StartServer(context.Background(), pgdata, top, uid, gid)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { srv.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := srv.WaitRecovered(ctx); err != nil {
		return srv, fmt.Errorf("%w\n%s", err, srv.LogTail(3000))
	}
	return srv, nil
}
