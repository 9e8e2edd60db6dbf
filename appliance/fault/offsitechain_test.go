package fault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/backup"
	"github.com/clinicbox/clinicbox/appliance/offsite"
	"github.com/clinicbox/clinicbox/appliance/restore"
	"github.com/clinicbox/clinicbox/appliance/vault"
	"github.com/clinicbox/clinicbox/drivers/postgres"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
	"github.com/clinicbox/clinicbox/drivers/tailnet/tailnettest"
	"github.com/clinicbox/clinicbox/drivers/testenv"
)

// powerCut is the box's uplink; armed, it cuts the power of /perm at the
// n-th upload of a backup file's chunk, which then fails.
type powerCut struct {
	next  http.RoundTripper
	perm  *drive
	at    atomic.Int64 // chunks to let through before the cut; 0: never
	sent  atomic.Int64 // body bytes of file chunks sent
	fired atomic.Bool
}

var errPowerCut = errors.New("fault: the box lost power")

func (p *powerCut) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == "PUT" && strings.Contains(r.URL.Path, "/files/") {
		if p.at.Load() > 0 && p.at.Add(-1) == 0 {
			p.perm.cutPower()
			p.fired.Store(true)
			return nil, errPowerCut
		}
		p.sent.Add(r.ContentLength)
	}
	return p.next.RoundTrip(r)
}

// A chain of incremental base backups reaches the vault across a drive
// swap, a power cut of /perm (ext4 on a loop device, shut down the way
// xfstests simulates power failure) in the middle of an upload, and the
// box's restart: the incremental built on /perm survives, its upload
// resumes from what the vault holds without re-sending it, the next
// incremental builds on it, and the vault's chain (a full backup and two
// incrementals) verifies with clinicctl, restores every commit the vault
// acknowledged, and starts the vault's trusted standby.
func TestOffsiteChainAcrossSwapPowerCutAndRestart(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{})
	ctx := context.Background()
	tr := newTry(t, "power cut of /perm while an incremental base backup built there uploads to the vault, after a drive swap; the box restarts")
	c.MustExec(t, `CREATE TABLE visits AS SELECT g AS id, md5(g::text) AS note FROM generate_series(1, 100000) g`, `VACUUM ANALYZE visits`, `CHECKPOINT`)
	led := startLedger(t, c, 300)
	perm := newDrive(t, 256<<20)
	tn := tailnettest.New(t)
	vaultDir := testenv.SharedDir(t) // the standby's server reads it as its own user
	serveVault(t, tn.Node(t, "vault", "tag:vault"), vaultDir)
	boxNode := tn.Node(t, "box", "tag:clinicbox")
	k := newKey(t)
	link := &powerCut{next: boxNode.HTTPClient().Transport, perm: perm}
	box := &chainBox{t: t, c: c, k: k, link: link, spool: filepath.Join(perm.dir, "offsite-spool")}
	driveA, driveB := testenv.SharedDir(t), testenv.SharedDir(t)

	sh := box.start()
	b1 := box.take(driveA)
	if err := sh.UploadBackup(ctx, driveA, b1.ID); err != nil {
		t.Fatal(err)
	}
	c.MustExec(t, `UPDATE visits SET note = 'seen' WHERE id % 1000 = 1`, `CHECKPOINT`)
	b2 := box.take(driveB) // the other drive, swapped in
	link.at.Store(2)
	if err := sh.UploadBackup(ctx, driveB, b2.ID); err == nil || !link.fired.Load() {
		t.Fatalf("the upload went through the power cut: %v", err)
	}
	box.stop() // the box is dead
	os.RemoveAll(driveB)
	cutSent := link.sent.Load()
	perm.unmount()
	if err := unix.Mount(perm.loop.Dev, perm.dir, "ext4", unix.MS_NOATIME, perm.opts); err != nil {
		t.Fatalf("mount /perm after the power cut: %v", err)
	}

	sh = box.start() // power back: the box starts again
	link.sent.Store(0)
	if err := sh.ResumeSpool(ctx); err != nil {
		t.Fatalf("resume after the power cut: %v", err)
	}
	inc := box.vaultBackup(vaultDir, b2.ID)
	if inc.Kind != archive.KindIncremental || inc.Parent != b1.ID {
		t.Fatalf("the vault holds %s as %q on %q; want incremental on %s", b2.ID, inc.Kind, inc.Parent, b1.ID)
	}
	if resent := link.sent.Load(); cutSent == 0 || resent >= inc.StoredBytes() {
		t.Errorf("after the power cut %d of %d bytes were sent (%d before it); want only what the vault lacked", resent, inc.StoredBytes(), cutSent)
	}
	c.MustExec(t, `UPDATE visits SET note = 'again' WHERE id % 1000 = 2`, `CHECKPOINT`)
	b3 := box.take(driveA)
	if err := sh.UploadBackup(ctx, driveA, b3.ID); err != nil {
		t.Fatal(err)
	}
	if got := box.vaultBackup(vaultDir, b3.ID); got.Kind != archive.KindIncremental || got.Parent != b2.ID {
		t.Fatalf("the vault holds %s as %q on %q; want incremental on %s", b3.ID, got.Kind, got.Parent, b2.ID)
	}
	claimed := box.waitDurable(sh)
	box.standbyReaches(vaultDir, b3.ID, claimed)
	box.stop()
	led.stop()
	if led.err != nil {
		t.Fatal(led.err)
	}
	tr.Lost = box.restoreFromVault(boxNode.HTTPClient(), b3.ID, led, claimed)
	if tr.Lost != "" {
		t.Error(tr.Lost)
	}
	tr.Outcome = "the spooled incremental survived; its upload resumed without re-sending; the next built on it; the vault's chain verifies, a drill from it holds every commit the vault acknowledged; the trusted standby starts from its end"
}

// chainBox is the box's offsite shipper, started and stopped as the box.
type chainBox struct {
	t     *testing.T
	c     *pgtest.Cluster
	k     key
	link  http.RoundTripper
	spool string
	stop  func()
}

func (b *chainBox) start() *offsite.Shipper {
	b.t.Helper()
	sh, err := offsite.New(offsite.Config{Name: "vault", DB: b.c.URL(), Recipients: []string{b.k.recipient}, Signer: testSigner, VaultURL: "http://vault:8443",
		Client: &http.Client{Transport: b.link}, Spool: b.spool, Identities: b.k.ids, FlushInterval: 100 * time.Millisecond, PollInterval: 200 * time.Millisecond}, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { sh.Run(ctx); close(done) }()
	b.stop = func() { cancel(); <-done }
	b.t.Cleanup(func() { cancel(); <-done })
	return sh
}

func (b *chainBox) take(dir string) *archive.Backup {
	b.t.Helper()
	bk, err := backup.Take(context.Background(), backup.Options{DB: b.c.URL(), Repo: dir, Recipients: []string{b.k.recipient}, Signer: testSigner, Compression: archive.ServerZstd})
	if err != nil {
		b.t.Fatal(err)
	}
	return bk
}

// vaultBackup is backup id as the vault stores it.
func (b *chainBox) vaultBackup(vaultDir, id string) *archive.Backup {
	b.t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(vaultDir, "boxes", "*", "repo"))
	if len(dirs) != 1 {
		b.t.Fatalf("vault repositories: %v", dirs)
	}
	r, err := archive.Open(dirs[0])
	if err != nil {
		b.t.Fatal(err)
	}
	got, err := r.Backup(id)
	if err != nil {
		b.t.Fatalf("the vault does not hold backup %s: %v", id, err)
	}
	return got
}

// waitDurable waits until the vault holds the server's WAL as of now and
// returns that position.
func (b *chainBox) waitDurable(sh *offsite.Shipper) postgres.LSN {
	b.t.Helper()
	want, err := b.c.CurrentLSN(context.Background(), true)
	if err != nil {
		b.t.Fatal(err)
	}
	waitUntil(b.t, "the vault to hold the WAL", 3*time.Minute, func() bool { return sh.Status().Durable >= want })
	return sh.Status().Durable
}

// standbyReaches runs the vault's trusted standby, which must start from
// backup id (rebuilt from its chain) and replay WAL up to lsn.
func (b *chainBox) standbyReaches(vaultDir, id string, lsn postgres.LSN) {
	t := b.t
	t.Helper()
	repos, _ := filepath.Glob(filepath.Join(vaultDir, "boxes", "*", "repo"))
	if len(repos) != 1 {
		t.Fatalf("vault repositories: %v", repos)
	}
	sb, err := vault.NewStandby(vault.StandbyConfig{Repo: repos[0], IdentityFile: b.k.file, BoxKey: testSigner.Public().String(),
		Dir: filepath.Join(testenv.SharedDir(t), "standby"), FetchProgram: clinicctl, Poll: 200 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sb.Run(ctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("standby: %v", err)
		}
	}()
	waitUntil(t, "the standby to replay the vault's WAL", 3*time.Minute, func() bool {
		st := sb.Status()
		if st.State == "failed" {
			t.Fatalf("standby failed: %s", st.Error)
		}
		return st.Replayed >= lsn
	})
	if got := sb.Status().Backup; got != id {
		t.Errorf("the standby started from backup %s; want the chain's end %s", got, id)
	}
}

// restoreFromVault copies the box's repository from the vault, verifies
// it with clinicctl, checks that the drill restores backup id and holds
// every ledger commit up to claimed, and says what was lost.
func (b *chainBox) restoreFromVault(hc *http.Client, id string, led *ledger, claimed postgres.LSN) string {
	t := b.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cache := filepath.Join(testenv.SharedDir(t), "cache")
	if _, _, err := vault.Mirror(ctx, hc, "http://vault:8443", "", cache); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, clinicctl, "verify", "--repo", cache, "--identity", b.k.file, "--box-key", testSigner.Public().String()).CombinedOutput()
	if err != nil || strings.Count(string(out), ": ok (") != 3 {
		t.Fatalf("clinicctl verify of the vault's chain: %v\n%s", err, out)
	}
	repo, err := archive.OpenFirstUse(cache)
	if err != nil {
		t.Fatal(err)
	}
	want := led.committedBy(claimed)
	countSQL := fmt.Sprintf("SELECT count(*) FROM %s WHERE seq <= %d;", ledgerTable, want)
	rep, err := restore.Drill(ctx, restore.DrillOptions{Repo: repo, Identities: b.k.ids, IdentityFile: b.k.file, Signer: testSigner,
		FetchProgram: clinicctl, Checks: &restore.Checks{Steps: []restore.CheckStep{{Database: "postgres", SQL: countSQL}}}})
	if err != nil || !rep.OK {
		t.Fatalf("drill from the vault's chain: %v %+v", err, rep)
	}
	if rep.Backup != id {
		t.Errorf("the drill restored backup %s; want the chain's end %s", rep.Backup, id)
	}
	for _, c := range rep.Checks {
		if got, _ := strconv.Atoi(c.Detail); strings.Contains(c.Name, ledgerTable) && got != want {
			return fmt.Sprintf("the vault's restore holds %d of the %d commits the vault acknowledged", got, want)
		}
	}
	return ""
}
