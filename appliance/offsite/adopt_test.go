package offsite

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/vault"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
	"github.com/clinicbox/clinicbox/drivers/tailnet/tailnettest"
)

// newTailnetSpoolEnv is newSpoolEnv with the vault on an in-process
// tailnet; it returns the box node's transport.
func newTailnetSpoolEnv(t *testing.T) (*spoolEnv, http.RoundTripper) {
	t.Helper()
	c := pgtest.New(t, pgtest.Options{})
	tn := tailnettest.New(t)
	vnode := tn.Node(t, "vault", "tag:vault")
	box := tn.Node(t, "box", "tag:clinicbox")
	dir := t.TempDir()
	v, err := vault.New(vault.Config{Dir: dir}, vnode, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := vnode.Listen(":8443")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: v}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close(); v.Close() })
	return spoolEnvOf(t, c, dir, "http://vault:8443"), box.HTTPClient().Transport
}

// A box whose /perm knows no chain (a replacement box with the old one's
// tailnet identity) continues the vault's chain instead of sending a full:
// first on a full backup, whose block map it computes as the backup
// streams down from the vault, then on an incremental one, whose map it
// reads from the vault. Each incremental restores from the vault matching
// its manifest; a block map the vault altered is refused and a full goes.
func TestReplacementBoxContinuesTheVaultsChain(t *testing.T) {
	e, rt := newTailnetSpoolEnv(t)
	ctx := context.Background()
	e.c.MustExec(t, `CREATE TABLE visits AS SELECT g AS id, md5(g::text) AS note FROM generate_series(1, 100000) g`, `VACUUM ANALYZE visits`, `CHECKPOINT`)
	drive := filepath.Join(t.TempDir(), "drive")
	b1 := e.take(t, drive)
	if err := e.shipper(t, rt).UploadBackup(ctx, drive, b1.ID); err != nil {
		t.Fatal(err)
	}
	_, full := e.stored(t, b1.ID)

	prev := b1
	for i, why := range []string{"on a full backup", "on an incremental backup"} {
		e.c.MustExec(t, fmt.Sprintf("UPDATE visits SET note = 'seen' WHERE id %% 1000 = %d", i+1), `CHECKPOINT`)
		b := e.take(t, drive)
		e.spool = filepath.Join(t.TempDir(), "perm", "offsite-spool") // a new box's /perm
		count := &countPUT{next: rt}
		if err := e.shipper(t, count).UploadBackup(ctx, drive, b.ID); err != nil {
			t.Fatalf("%s: %v", why, err)
		}
		_, inc := e.stored(t, b.ID)
		if inc.Kind != archive.KindIncremental || inc.Parent != prev.ID {
			t.Fatalf("%s: the vault holds %s as %q on %q; want incremental on %s", why, b.ID, inc.Kind, inc.Parent, prev.ID)
		}
		if sent := count.sent.Load(); sent*4 > full.StoredBytes() {
			t.Errorf("%s: the replacement box sent %d bytes; the full backup holds %d", why, sent, full.StoredBytes())
		}
		e.restoredMatches(t, b.ID)
		prev = b
	}
	if st, err := (&Shipper{cfg: Config{Spool: e.spool}}).readChain(); err != nil || st.Depth != 2 || st.Tip != prev.ID {
		t.Errorf("the adopted chain: %+v, %v; want depth 2 at %s", st, err, prev.ID)
	}

	// The vault alters the tip's block map: the box refuses it and sends
	// the next backup whole.
	r, _ := e.stored(t, prev.ID)
	alterStored(t, filepath.Join(r.Dir, "backups", prev.ID, "blockmap.age"))
	e.c.MustExec(t, `UPDATE visits SET note = 'late' WHERE id % 1000 = 7`, `CHECKPOINT`)
	b := e.take(t, drive)
	e.spool = filepath.Join(t.TempDir(), "perm", "offsite-spool")
	if err := e.shipper(t, rt).UploadBackup(ctx, drive, b.ID); err != nil {
		t.Fatal(err)
	}
	if _, got := e.stored(t, b.ID); got.Kind == archive.KindIncremental {
		t.Errorf("backup %s went incremental on a block map the vault altered", b.ID)
	}
}

// countPUT counts the body bytes of backup file uploads it carries.
type countPUT struct {
	next http.RoundTripper
	sent atomic.Int64
}

func (c *countPUT) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == "PUT" && strings.Contains(r.URL.Path, "/files/") {
		c.sent.Add(r.ContentLength)
	}
	return c.next.RoundTrip(r)
}

// alterStored flips one byte in the middle of a stored file.
func alterStored(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 1
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
