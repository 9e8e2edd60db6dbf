package backup

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
)

// Drives take turns on one slot. While drive A is away, drive B moves the
// slot on and the server recycles the WAL in between; when A comes back,
// streaming onto it starts afresh at the slot instead of failing on WAL the
// server no longer has, and A's repository still verifies, with the gap
// noted.
func TestDrivesTakeTurnsOnOneSlot(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{Conf: []string{"max_wal_size = 64MB", "min_wal_size = 32MB"}})
	ctx := context.Background()
	if err := c.PgbenchInit(ctx, 2); err != nil {
		t.Fatal(err)
	}
	recip, ids := testKey(t)
	top := t.TempDir()
	a, b := filepath.Join(top, "a"), filepath.Join(top, "b")
	opt := StreamOptions{DB: c.URL(), Slot: "clinicbox_drive", Recipients: []string{recip}, Signer: testSigner}

	for i, dir := range []string{a, b, a} {
		opt.Repo = dir
		s := startStream(t, opt)
		// The streamer holds the repository's WAL before the backup
		// starts, so the backup waits for it instead of streaming its own.
		s.waitFor(t, 1, currentLSN(t, c, false))
		if _, err := Take(ctx, Options{DB: c.URL(), Repo: dir, Recipients: []string{recip}, Signer: testSigner}); err != nil {
			t.Fatalf("turn %d: backup: %v", i, err)
		}
		if err := c.Pgbench(ctx, "-t", "4000"); err != nil {
			t.Fatal(err)
		}
		s.waitFor(t, 1, currentLSN(t, c, true))
		s.stop(t)
		c.MustExec(t, "CHECKPOINT")
		c.MustExec(t, "CHECKPOINT") // twice: recycle the WAL before the slot
	}
	rep := assertVerifies(t, a, ids)
	noted := false
	for _, n := range rep.Notes {
		noted = noted || strings.Contains(n, "started afresh")
	}
	if !noted {
		t.Errorf("drive A's gap while it was away is not noted: %v", rep.Notes)
	}
	assertVerifies(t, b, ids)
}
