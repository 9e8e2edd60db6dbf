package offsite_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/backup"
	"github.com/clinicbox/clinicbox/appliance/offsite"
	"github.com/clinicbox/clinicbox/appliance/restore"
	"github.com/clinicbox/clinicbox/appliance/vault"
	"github.com/clinicbox/clinicbox/appliance/vault/bucket"
	"github.com/clinicbox/clinicbox/appliance/vault/store/storetest"
	"github.com/clinicbox/clinicbox/drivers/postgres"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
	"github.com/clinicbox/clinicbox/drivers/tailnet"
	"github.com/clinicbox/clinicbox/drivers/tailnet/tailnettest"
	"github.com/clinicbox/clinicbox/drivers/testenv"
	"github.com/jackc/pgx/v5"
)

// clinicHash is a digest of every row of the clinic's tables and marks.
const clinicHash = `SELECT md5(string_agg(r, '|' ORDER BY r)) FROM (
	SELECT 'p' || t::text AS r FROM patients t UNION ALL
	SELECT 'e' || t::text FROM encounters t UNION ALL
	SELECT 'm' || t::text FROM marks t) x`

func hashOf(t *testing.T, ctx context.Context, conn *pgx.Conn) string {
	t.Helper()
	var h string
	if err := conn.QueryRow(ctx, clinicHash).Scan(&h); err != nil {
		t.Fatal(err)
	}
	return h
}

// movableClock is a vault's clock that a test moves on.
type movableClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *movableClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *movableClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off += d
}

// A box backs a real PostgreSQL up to a vault on a real S3 server
// (versitygw) and stops. The vault node's directory is thrown away and
// the namespace rebuilt from the bucket alone: a restore from the vault
// matches the source row for row, the trusted standby follows the
// rebuilt repository, and, once everything is evicted from the node's
// disk, a second restore, served from the bucket, matches again.
func TestVaultRebuiltFromBucketRestoresExactly(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{})
	ctx := context.Background()
	if err := c.ClinicInit(ctx, 50); err != nil {
		t.Fatal(err)
	}
	c.MustExec(t, "CREATE TABLE marks (id int PRIMARY KEY)")
	st := storetest.StartVersityGW(t, storetest.Options{}).Open(t)
	tn := tailnettest.New(t)
	vnode := tn.Node(t, "vault", "tag:vault")
	boxNode := tn.Node(t, "box", "tag:clinicbox")
	restorer := tn.Node(t, "restorer", "tag:clinicrestore")
	clk := &movableClock{}
	vcfg := vault.Config{Dir: testenv.SharedDir(t), Bucket: bucket.New(st), LocalKeep: 24 * time.Hour, Now: clk.Now}
	vs := startVault(t, vnode, vcfg)

	id, _ := age.GenerateX25519Identity()
	ids := []age.Identity{id}
	idFile := filepath.Join(testenv.SharedDir(t), "key")
	os.WriteFile(idFile, []byte(id.String()+"\n"), 0o600)
	uid, gid := serverUser(t)
	if uid >= 0 {
		os.Chown(idFile, uid, gid)
	}
	lsn := shipAndStop(t, c, boxNode, id)
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	want := hashOf(t, ctx, conn)
	conn.Close(ctx)

	if err := vs.v.Offload(ctx); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join(vcfg.Dir, "boxes"))
	if len(ents) != 1 {
		t.Fatalf("namespaces on the vault: %v; want the box's", ents)
	}
	ns := ents[0].Name()
	vs.stop()
	os.RemoveAll(vcfg.Dir)
	vcfg.Dir = testenv.SharedDir(t)
	vs = startVault(t, vnode, vcfg)
	if _, err := vs.v.Rehydrate(ctx, st, ns); err != nil {
		t.Fatal(err)
	}

	r := restoreFromVault{t: t, hc: restorer.HTTPClient(), ns: ns, ids: ids, idFile: idFile, uid: uid, gid: gid}
	if got := r.hash(ctx); got != want {
		t.Errorf("restored from the rebuilt vault: %s; want the source's %s", got, want)
	}
	sb, sbDir := startStandby(t, filepath.Join(vcfg.Dir, "boxes", ns, "repo"), idFile)
	sconn := waitReplayed(t, sb, sbDir, lsn)
	var marks int
	if err := sconn.QueryRow(ctx, "SELECT count(*) FROM marks WHERE id = 1").Scan(&marks); err != nil || marks != 1 {
		t.Errorf("the standby on the rebuilt vault has %d rows of the mark (%v); want 1", marks, err)
	}
	sconn.Close(ctx)

	clk.add(48 * time.Hour)
	if err := vs.v.Evict(ctx); err != nil {
		t.Fatal(err)
	}
	left := 0
	filepath.WalkDir(filepath.Join(vcfg.Dir, "boxes", ns, "repo", "backups"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Ext(p) == ".age" {
			left++
		}
		return nil
	})
	if left != 0 {
		t.Errorf("%d encrypted backup files still on the vault's disk after eviction; want none", left)
	}
	if got := r.hash(ctx); got != want {
		t.Errorf("restored from the bucket after eviction: %s; want the source's %s", got, want)
	}
}

// shipAndStop takes a base backup, ships it and the WAL to the vault
// through the box's tailnet node, writes a mark, waits until the vault
// holds it, and stops the box. It returns the LSN the vault holds.
func shipAndStop(t *testing.T, c *pgtest.Cluster, boxNode *tailnet.Node, id *age.X25519Identity) postgres.LSN {
	t.Helper()
	ctx := context.Background()
	recips := []string{id.Recipient().String()}
	drive := filepath.Join(testenv.SharedDir(t), "drive")
	bk, err := backup.Take(ctx, backup.Options{DB: c.URL(), Repo: drive, Recipients: recips, Signer: testSigner})
	if err != nil {
		t.Fatal(err)
	}
	sh := runShipper(t, ctx, offsite.Config{DB: c.URL(), Recipients: recips, Client: boxNode.HTTPClient()})
	defer sh.stop()
	if err := sh.UploadBackup(ctx, drive, bk.ID); err != nil {
		t.Fatal(err)
	}
	c.MustExec(t, "INSERT INTO marks VALUES (1)")
	lsn, err := c.CurrentLSN(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.waitDurable(ctx, lsn, 3*time.Minute); err != nil {
		t.Fatalf("WAL up to %s not durable at the vault: %v", lsn, err)
	}
	return lsn
}

// restoreFromVault restores the box's latest state from the vault as the
// restore machine does: mirror, verify, recover, then digest the tables.
type restoreFromVault struct {
	t          *testing.T
	hc         *http.Client
	ns, idFile string
	ids        []age.Identity
	uid, gid   int
}

// start restores the box's repository to target and starts the restored
// server, stopped when the test ends.
func (r restoreFromVault) start(ctx context.Context, target restore.Target) *restore.Server {
	t := r.t
	t.Helper()
	cache := filepath.Join(testenv.SharedDir(t), "cache")
	mctx, cancel := context.WithTimeout(ctx, testenv.Patience(t))
	defer cancel()
	if _, _, err := vault.Mirror(mctx, r.hc, "http://vault:8443", r.ns, cache); err != nil {
		t.Fatal(err)
	}
	repo, err := archive.OpenFirstUse(cache)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := repo.Verify(ctx, archive.VerifyOptions{Identities: r.ids})
	if err != nil || !rep.OK() {
		t.Fatalf("the vault's repository does not verify: %v %v", err, rep)
	}
	top := testenv.SharedDir(t)
	if r.uid >= 0 {
		os.Chown(top, r.uid, r.gid)
	}
	pgdata := filepath.Join(top, "pgdata")
	if _, err := restore.Run(ctx, restore.Options{Repo: repo, Identities: r.ids, IdentityFile: r.idFile, PGData: pgdata,
		Target: target, FetchProgram: clinicctl, OwnerUID: r.uid, OwnerGID: r.gid}); err != nil {
		t.Fatal(err)
	}
	srv, err := restore.StartServer(ctx, pgdata, top, r.uid, r.gid)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	rctx, rcancel := context.WithTimeout(ctx, testenv.Patience(t))
	defer rcancel()
	if err := srv.WaitRecovered(rctx); err != nil {
		t.Fatalf("%v\n%s", err, srv.LogTail(3000))
	}
	return srv
}

// hash restores the box's latest state and digests its tables.
func (r restoreFromVault) hash(ctx context.Context) string {
	r.t.Helper()
	srv := r.start(ctx, restore.Target{})
	defer srv.Stop()
	conn, err := srv.Connect(ctx, "postgres")
	if err != nil {
		r.t.Fatal(err)
	}
	defer conn.Close(ctx)
	return hashOf(r.t, ctx, conn)
}

// startStandby runs a trusted standby on a vault's repository until the
// test ends; it returns the standby and the directory it runs in.
func startStandby(t *testing.T, repo, idFile string) (*vault.Standby, string) {
	t.Helper()
	top := testenv.SharedDir(t)
	sb, err := vault.NewStandby(vault.StandbyConfig{Repo: repo, IdentityFile: idFile, BoxKey: testSigner.Public().String(),
		Dir: filepath.Join(top, "standby"), FetchProgram: clinicctl, Poll: 200 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sb.Run(sctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("standby: %v", err)
		}
	})
	return sb, filepath.Join(top, "standby")
}

// waitReplayed waits until the standby has replayed to lsn and connects
// to it.
func waitReplayed(t *testing.T, sb *vault.Standby, dir string, lsn postgres.LSN) *pgx.Conn {
	t.Helper()
	deadline := time.After(3 * time.Minute) // a failure bound, not synchronization
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for st := sb.Status(); st.Replayed < lsn; st = sb.Status() {
		if st.State == "failed" {
			t.Fatalf("standby failed: %s", st.Error)
		}
		select {
		case <-deadline:
			t.Fatalf("standby replayed to %s; want %s within 3 minutes (status %+v)", st.Replayed, lsn, st)
		case <-tick.C:
		}
	}
	conn, err := pgx.Connect(context.Background(), fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable", dir, sb.Status().Port))
	if err != nil {
		t.Fatal(err)
	}
	return conn
}
