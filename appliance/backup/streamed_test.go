package backup

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
)

// When the box starts with a drive in it, its permanent stream and a base
// backup start together. A backup that streamed its own WAL from its start
// would leave the permanent stream to resume after it, skipping the WAL
// between the drive's end and the backup's start that the slot still
// kept: a gap in the older backups' recoverable window. With Streamed the
// backup waits for the permanent stream instead, which resumes where the
// drive ends.
func TestStreamedBackupWaitsForTheStream(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{})
	ctx := context.Background()
	recip, ids := testKey(t)
	dir := filepath.Join(t.TempDir(), "repo")
	opt := StreamOptions{DB: c.URL(), Repo: dir, Slot: "clinicbox_drive", Recipients: []string{recip}, Signer: testSigner}
	s := startStream(t, opt)
	s.waitFor(t, 1, currentLSN(t, c, false))
	// The older backup whose recoverable window must reach the present.
	if _, err := Take(ctx, Options{DB: c.URL(), Repo: dir, Recipients: []string{recip}, Signer: testSigner}); err != nil {
		t.Fatal(err)
	}
	s.waitFor(t, 1, currentLSN(t, c, true))
	s.stop(t)
	// The box is off for a while; the server writes on and the slot keeps
	// the WAL.
	c.MustExec(t, "CREATE TABLE while_off (n int)")
	for i := range 3 {
		c.MustExec(t, fmt.Sprintf("INSERT INTO while_off VALUES (%d)", i))
		currentLSN(t, c, true)
	}
	// The backup gets ahead of the restarting stream: it has begun
	// writing before the stream is back.
	done := make(chan error, 1)
	go func() {
		_, err := Take(ctx, Options{DB: c.URL(), Repo: dir, Recipients: []string{recip}, Signer: testSigner, Streamed: true, WALWait: 2 * time.Minute})
		done <- err
	}()
	repo, err := archive.OpenFirstUse(dir)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		_, incomplete, err := repo.Backups()
		if err != nil {
			t.Fatal(err)
		}
		if len(incomplete) > 0 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("backup ended before the stream came back: %v", err)
		case <-time.After(20 * time.Millisecond): // polling the repository
		}
		if time.Now().After(deadline) {
			t.Fatal("the backup did not start writing within a minute")
		}
	}
	s = startStream(t, opt)
	if err := <-done; err != nil {
		t.Fatalf("backup: %v", err)
	}
	s.waitFor(t, 1, currentLSN(t, c, true))
	s.stop(t)
	rep := assertVerifies(t, dir, ids)
	for _, n := range rep.Notes {
		if strings.Contains(n, "no WAL from") {
			t.Errorf("WAL gap after a backup that started before the stream: %s", n)
		}
	}
}
