package offsite_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/backup"
	"github.com/clinicbox/clinicbox/appliance/offsite"
	"github.com/clinicbox/clinicbox/appliance/vault"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
	"github.com/clinicbox/clinicbox/drivers/tailnet/tailnettest"
	"github.com/clinicbox/clinicbox/drivers/testenv"
)

// WAL goes first on a 128 kbit/s uplink: while a base backup uploads over
// the same shaped link, commits keep reaching the vault within seconds
// (the p99 of commit-to-durable is logged; the bound asserted is loose for
// a loaded test machine), and the upload still makes progress.
func TestWALLagDuringBaseUploadShaped(t *testing.T) {
	ctx := context.Background()
	c := pgtest.New(t, pgtest.Options{Fsync: true})
	c.MustExec(t, "CREATE TABLE probes (at timestamptz)", "CHECKPOINT")
	tn := tailnettest.New(t)
	startVault(t, tn.Node(t, "vault", "tag:vault"), vault.Config{Dir: t.TempDir()})
	_, recips := newKey(t)
	drive := filepath.Join(testenv.SharedDir(t), "drive")
	bk, err := backup.Take(ctx, backup.Options{DB: c.URL(), Repo: drive, Recipients: recips, Signer: testSigner})
	if err != nil {
		t.Fatal(err)
	}

	pr := &probes{}
	wire := new(atomic.Int64)
	sh, err := offsite.New(offsite.Config{Name: "shaped", DB: c.URL(), Recipients: recips, Signer: testSigner, VaultURL: "http://vault:8443",
		Client: clientOver(tn.Node(t, "box", "tag:clinicbox"), wire, 128000/8), OnDurable: pr.durable}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { sh.Run(rctx); close(done) }()
	defer func() { stop(); <-done }()
	for deadline := time.Now().Add(2 * time.Minute); !sh.Status().Connected || sh.Status().BacklogBytes > 0; {
		if time.Now().After(deadline) {
			t.Fatal("the shipper did not catch up before the upload")
		}
		time.Sleep(100 * time.Millisecond) // polling the status for a positive signal
	}

	const phase = 60 * time.Second
	pctx, cancel := context.WithTimeout(ctx, phase)
	defer cancel()
	go pr.run(pctx, t, c)
	upErr := make(chan error, 1)
	go func() { upErr <- sh.UploadBackup(pctx, drive, bk.ID) }()
	<-pctx.Done()
	<-upErr
	st := sh.Status()
	p50, p99 := pr.quantile(0.5), pr.quantile(0.99)
	t.Logf("128 kbit/s for %s: %d commits, commit-to-durable p50 %.2f s, p99 %.2f s; base upload sent %d of %d bytes; %d bytes on the wire",
		phase, len(pr.lags), p50, p99, st.UploadDone, st.UploadTotal, wire.Load())
	if len(pr.lags) < 100 || p99 > 30 {
		t.Errorf("commit-to-durable p99 %.2f s over %d commits while a base backup uploads; want WAL first (well under 30 s)", p99, len(pr.lags))
	}
	if st.UploadDone == 0 {
		t.Error("the base upload made no progress while WAL went first")
	}
}
