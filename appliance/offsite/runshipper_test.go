package offsite_test

import (
	"context"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/backup"
	"github.com/clinicbox/clinicbox/appliance/offsite"
	"github.com/clinicbox/clinicbox/drivers/postgres"
)

// runningShipper is a shipper running against the tests' vault until stop.
type runningShipper struct {
	*offsite.Shipper
	flushes *backup.Flushes
	ended   chan struct{}
	err     error
	cancel  context.CancelFunc
}

// runShipper starts a shipper named vault1 for http://vault:8443, signing
// with testSigner, with short flush and poll intervals; cfg gives the rest.
func runShipper(t *testing.T, ctx context.Context, cfg offsite.Config) *runningShipper {
	t.Helper()
	r := &runningShipper{flushes: backup.NewFlushes(), ended: make(chan struct{})}
	cfg.Name, cfg.Signer, cfg.VaultURL, cfg.OnDurable = "vault1", testSigner, "http://vault:8443", r.flushes.Record
	cfg.FlushInterval, cfg.PollInterval = 100*time.Millisecond, 200*time.Millisecond
	sh, err := offsite.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Shipper = sh
	runCtx, cancel := context.WithCancel(ctx)
	r.cancel = cancel
	go func() { r.err = sh.Run(runCtx); close(r.ended) }()
	return r
}

// stop stops the shipper and waits for it.
func (r *runningShipper) stop() { r.cancel(); <-r.ended }

// waitDurable waits at most limit until the WAL up to lsn is durable at
// the vault, or the shipper ended.
func (r *runningShipper) waitDurable(ctx context.Context, lsn postgres.LSN, limit time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	return r.flushes.Wait(wctx, 1, lsn, r.ended, func() error { return r.err })
}
