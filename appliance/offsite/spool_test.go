package offsite

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"filippo.io/age"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/backup"
	"github.com/clinicbox/clinicbox/appliance/vault"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
)

// cutAfter fails every upload of a backup file after the first n, as a
// link or a box that goes away does.
type cutAfter struct {
	n    atomic.Int64
	sent atomic.Int64 // body bytes of file uploads that went through
}

func (c *cutAfter) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == "PUT" && strings.Contains(r.URL.Path, "/files/") {
		if c.n.Add(-1) < 0 {
			return nil, errors.New("the link went down")
		}
		c.sent.Add(r.ContentLength)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// spoolEnv is a database server, a vault, the box's /perm and its drives.
type spoolEnv struct {
	c     *pgtest.Cluster
	vault string // the vault's directory
	url   string
	spool string
	recip string
	ids   []age.Identity
	limit int64 // Config.SpoolLimit
}

func newSpoolEnv(t *testing.T) *spoolEnv {
	t.Helper()
	c := pgtest.New(t, pgtest.Options{})
	dir := t.TempDir()
	v, err := vault.New(vault.Config{Dir: dir}, oneBox{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	srv := httptest.NewServer(v)
	t.Cleanup(srv.Close)
	return spoolEnvOf(t, c, dir, srv.URL)
}

// spoolEnvOf is the environment of a vault in dir answering at url.
func spoolEnvOf(t *testing.T, c *pgtest.Cluster, dir, url string) *spoolEnv {
	id, _ := age.GenerateX25519Identity()
	return &spoolEnv{c: c, vault: dir, url: url, spool: filepath.Join(t.TempDir(), "perm", "offsite-spool"),
		recip: id.Recipient().String(), ids: []age.Identity{id}}
}

// shipper is the box's shipper after a (re)start, its requests carried by rt.
func (e *spoolEnv) shipper(t *testing.T, rt http.RoundTripper) *Shipper {
	t.Helper()
	s, err := New(Config{Name: "home", DB: e.c.URL(), VaultURL: e.url, Recipients: []string{e.recip}, Signer: testSign,
		Spool: e.spool, Identities: e.ids, Client: &http.Client{Transport: rt}, SpoolLimit: e.limit}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// take runs a base backup onto the drive at dir.
func (e *spoolEnv) take(t *testing.T, dir string) *archive.Backup {
	t.Helper()
	b, err := backup.Take(context.Background(), backup.Options{DB: e.c.URL(), Repo: dir, Recipients: []string{e.recip}, Signer: testSign, Compression: archive.ServerZstd})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// stored is backup id as the vault holds it, and the vault's repository.
func (e *spoolEnv) stored(t *testing.T, id string) (*archive.Repo, *archive.Backup) {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(e.vault, "boxes", "*", "repo"))
	if len(dirs) != 1 {
		t.Fatalf("vault repositories: %v", dirs)
	}
	r, err := archive.Open(dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	r.Trust(testSign.Public())
	b, err := r.Backup(id)
	if err != nil {
		t.Fatalf("the vault does not hold backup %s: %v", id, err)
	}
	return r, b
}

// restoredMatches restores backup id from the vault and checks every file
// against the backup's manifest.
func (e *spoolEnv) restoredMatches(t *testing.T, id string) {
	t.Helper()
	r, b := e.stored(t, id)
	out := filepath.Join(t.TempDir(), "pgdata")
	if err := r.Extract(b, out, archive.ExtractOptions{Identities: e.ids}); err != nil {
		t.Fatalf("restore %s from the vault: %v", id, err)
	}
	m, err := r.Manifest(b, e.ids)
	if err != nil {
		t.Fatal(err)
	}
	if bad := archive.CheckTree(out, m); len(bad) > 0 || len(m.Files) < 900 {
		t.Fatalf("restored %s: %d of %d files differ from the manifest: %.5q", id, len(bad), len(m.Files), bad)
	}
}

// Base backups reach the vault as a chain through the spool on /perm: the
// first whole, the next incremental, built from a swapped-in drive; its
// upload cut off and the drive taken away, a restarted box finishes it from
// the spool without re-sending what the vault holds; a damaged block map
// makes the next one full. Each restores from the vault matching its
// manifest; one too large for the spool goes whole.
func TestSpoolChainAcrossSwapRestartAndDamage(t *testing.T) {
	e := newSpoolEnv(t)
	ctx := context.Background()
	// Vacuumed, as a settled clinic's tables are: the hint bits of every
	// row are set before the first backup (the first scan that sets them
	// changes every page, and the next incremental carries them all).
	e.c.MustExec(t, `CREATE TABLE visits AS SELECT g AS id, md5(g::text) AS note FROM generate_series(1, 100000) g`, `VACUUM ANALYZE visits`, `CHECKPOINT`)
	driveA, driveB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")

	b1 := e.take(t, driveA)
	if err := e.shipper(t, http.DefaultTransport).UploadBackup(ctx, driveA, b1.ID); err != nil {
		t.Fatal(err)
	}

	e.c.MustExec(t, `UPDATE visits SET note = 'seen' WHERE id % 1000 = 0`, `CHECKPOINT`)
	b2 := e.take(t, driveB) // the other drive, swapped in
	cut := &cutAfter{}
	cut.n.Store(1)
	if err := e.shipper(t, cut).UploadBackup(ctx, driveB, b2.ID); err == nil {
		t.Fatal("the upload went through a link that went down")
	}
	os.RemoveAll(driveB) // ejected, and gone
	again := &cutAfter{}
	again.n.Store(1 << 20)
	if err := e.shipper(t, again).ResumeSpool(ctx); err != nil {
		t.Fatalf("resume after a restart: %v", err)
	}
	_, inc := e.stored(t, b2.ID)
	if inc.Kind != archive.KindIncremental || inc.Parent != b1.ID {
		t.Fatalf("the vault holds %s as %q on %q; want incremental on %s", b2.ID, inc.Kind, inc.Parent, b1.ID)
	}
	total := inc.StoredBytes()
	if resent := again.sent.Load(); cut.sent.Load() == 0 || resent >= total {
		t.Errorf("after the restart %d of %d bytes were sent; want only what the vault lacked", resent, total)
	}
	_, full := e.stored(t, b1.ID)
	t.Logf("full %s: %d bytes stored; incremental %s: %d bytes", b1.ID, full.StoredBytes(), b2.ID, total)
	if total*4 > full.StoredBytes() {
		t.Errorf("the incremental holds %d bytes; the full %d: want at most a quarter", total, full.StoredBytes())
	}
	e.restoredMatches(t, b2.ID)

	// A damaged block map on /perm: the next backup goes whole.
	alterStored(t, filepath.Join(e.spool, spoolBlockMap))
	b3 := e.take(t, driveA)
	if err := e.shipper(t, http.DefaultTransport).UploadBackup(ctx, driveA, b3.ID); err != nil {
		t.Fatal(err)
	}
	if _, got := e.stored(t, b3.ID); got.Kind == archive.KindIncremental {
		t.Errorf("backup %s went incremental on a damaged block map", b3.ID)
	}
	var p3 wire.BackupProgress
	if err := e.shipper(t, http.DefaultTransport).call(ctx, "GET", "/v1/backups/"+b3.ID, nil, nil, &p3); err != nil || !p3.Complete {
		t.Errorf("the vault's answer for %s: %+v, %v", b3.ID, p3, err)
	}
	e.restoredMatches(t, b3.ID)

	// An incremental that would not fit the spool: the backup goes whole.
	e.c.MustExec(t, `UPDATE visits SET note = 'again' WHERE id % 10 = 0`, `CHECKPOINT`)
	b4 := e.take(t, driveA)
	e.limit = 16 << 10
	if err := e.shipper(t, http.DefaultTransport).UploadBackup(ctx, driveA, b4.ID); err != nil {
		t.Fatal(err)
	}
	if _, got := e.stored(t, b4.ID); got.Kind == archive.KindIncremental {
		t.Errorf("backup %s went incremental past the spool's limit", b4.ID)
	}
	if left, _ := os.ReadDir(filepath.Join(e.spool, spoolRepo, "backups")); len(left) != 0 {
		t.Errorf("the spool holds %v after the uploads", left)
	}
}
