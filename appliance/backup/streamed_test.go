package backup

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
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

// stoppedMidSegment streams into a new repository through a permanent slot,
// takes the backup whose window must reach the present, and stops the
// stream inside a segment; the server then writes on across several
// segments. It returns the repository and the segment left partial.
func stoppedMidSegment(t *testing.T, c *pgtest.Cluster, recip string) (string, uint64) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	s := startStream(t, StreamOptions{DB: c.URL(), Repo: dir, Slot: "clinicbox_drive", Recipients: []string{recip}, Signer: testSigner})
	s.waitFor(t, 1, currentLSN(t, c, false))
	if _, err := Take(context.Background(), Options{DB: c.URL(), Repo: dir, Recipients: []string{recip}, Signer: testSigner}); err != nil {
		t.Fatal(err)
	}
	c.MustExec(t, "CREATE TABLE before_stop (n int)", "INSERT INTO before_stop VALUES (1)")
	at := currentLSN(t, c, false)
	s.waitFor(t, 1, at)
	s.stop(t)
	repo, err := archive.OpenFirstUse(dir)
	if err != nil {
		t.Fatal(err)
	}
	seg := uint64(at) / repo.Info.SegmentSize
	if sd, err := repo.ReadSegment(1, seg, nil); err == nil && !sd.Partial {
		t.Fatalf("segment %d is complete; the stream was to stop inside it", seg)
	}
	return dir, seg
}

// partialNotes are the verifier's notes and problems about WAL missing
// after a partial segment.
func partialNotes(rep *archive.Report) []string {
	var out []string
	for _, n := range rep.Notes {
		if strings.Contains(n, "no WAL from") {
			out = append(out, n)
		}
	}
	for _, p := range rep.Problems {
		out = append(out, p.String())
	}
	return out
}

// clinicctl backup with no stream running streams its own WAL. Started at
// the backup's start, that stream would leave the segment the permanent
// stream stopped in partial for good: the permanent stream resumes after
// the highest segment stored, and every restore from an older backup
// stops where the partial file ends. The backup's stream starts where the
// repository ends instead, while the server still has that WAL.
func TestOwnStreamStartsWhereTheRepositoryEnds(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{})
	recip, ids := testKey(t)
	dir, seg := stoppedMidSegment(t, c, recip)
	for i := range 3 {
		c.MustExec(t, fmt.Sprintf("INSERT INTO before_stop VALUES (%d)", i+2))
		currentLSN(t, c, true)
	}
	if _, err := Take(context.Background(), Options{DB: c.URL(), Repo: dir, Recipients: []string{recip}, Signer: testSigner}); err != nil {
		t.Fatal(err)
	}
	repo, err := archive.OpenFirstUse(dir)
	if err != nil {
		t.Fatal(err)
	}
	sd, err := repo.ReadSegment(1, seg, ids)
	if err != nil || sd.Partial {
		t.Errorf("segment %d the stream stopped in: err %v, partial %v; want it complete", seg, err, sd != nil && sd.Partial)
	}
	s := startStream(t, StreamOptions{DB: c.URL(), Repo: dir, Slot: "clinicbox_drive", Recipients: []string{recip}, Signer: testSigner})
	s.waitFor(t, 1, currentLSN(t, c, true))
	s.stop(t)
	rep, err := repo.Verify(context.Background(), archive.VerifyOptions{Identities: ids})
	if err != nil {
		t.Fatal(err)
	}
	if missing := partialNotes(rep); len(missing) > 0 {
		t.Errorf("WAL missing after the backup's own stream: %q", missing)
	}
}

// When the server has already removed the WAL after the repository's end
// (the slot was dropped), the backup's own stream starts at the backup's
// start after all: the backup stores and verifies, and the verifier names
// the gap after the partial segment as a fresh start.
func TestOwnStreamStartsAtTheBackupWhenTheServerRemovedTheWAL(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{})
	recip, ids := testKey(t)
	dir, seg := stoppedMidSegment(t, c, recip)
	deadline := time.Now().Add(time.Minute)
	for c.Exec(context.Background(), "SELECT pg_drop_replication_slot('clinicbox_drive')") != nil { // active until its walsender notices
		if time.Now().After(deadline) {
			t.Fatal("the slot could not be dropped within a minute")
		}
		time.Sleep(50 * time.Millisecond) // polling the server
	}
	repo, err := archive.OpenFirstUse(dir)
	if err != nil {
		t.Fatal(err)
	}
	name := archive.SegmentName(1, seg, repo.Info.SegmentSize)
	for range 4 {
		c.MustExec(t, "INSERT INTO before_stop SELECT g FROM generate_series(1, 1000) g", "SELECT pg_switch_wal()", "CHECKPOINT")
	}
	conn, err := c.Connect(context.Background(), "postgres")
	if err != nil {
		t.Fatal(err)
	}
	var left int
	err = conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_ls_waldir() WHERE name = $1", name).Scan(&left)
	conn.Close(context.Background())
	if err != nil || left != 0 {
		t.Fatalf("the server still has %s (%d, %v); the test needs it removed", name, left, err)
	}
	b, err := Take(context.Background(), Options{DB: c.URL(), Repo: dir, Recipients: []string{recip}, Signer: testSigner})
	if err != nil {
		t.Fatalf("backup when the server no longer has the repository's end: %v", err)
	}
	rep, err := repo.Verify(context.Background(), archive.VerifyOptions{Identities: ids})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Errorf("problems: %v", rep.Problems)
	}
	want := "no WAL from " + name + " past the "
	if n := partialNotes(rep); !slices.ContainsFunc(n, func(s string) bool { return strings.Contains(s, want) }) {
		t.Errorf("notes about the gap: %q; want one holding %q", n, want)
	}
	for _, r := range rep.Backups {
		if r.ID == b.ID && !r.OK {
			t.Errorf("the backup taken after the gap does not verify: %v", r.Problems)
		}
	}
}

// A backup that waits for another process's stream to store its WAL says
// at once when that process has stopped (a drive that filled up stops the
// stream, and what the stream leaves may give the backup room again),
// instead of waiting Options.WALWait for WAL that nothing will store.
func TestBackupSaysWhenTheStreamItWaitsForStopped(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{})
	ctx := context.Background()
	recip, _ := testKey(t)
	dir := filepath.Join(t.TempDir(), "repo")
	s := startStream(t, StreamOptions{DB: c.URL(), Repo: dir, Slot: "clinicbox_drive", Recipients: []string{recip}, Signer: testSigner})
	s.waitFor(t, 1, currentLSN(t, c, false))
	opt := Options{DB: c.URL(), Repo: dir, Recipients: []string{recip}, Signer: testSigner, WALWait: time.Minute}
	opt.defaults()
	conn, repo, err := connectRepo(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	end := currentLSN(t, c, true) + 64<<20 // beyond what the stream stores here
	// While the stream runs, the backup waits for it, up to WALWait.
	short := opt
	short.WALWait = 100 * time.Millisecond
	if err := awaitWAL(ctx, short, repo, nil, end); err == nil || !strings.Contains(err.Error(), "has not stored WAL up to") {
		t.Fatalf("waiting for a running stream: got %v; want it to wait until WALWait", err)
	}
	s.stop(t)
	err = awaitWAL(ctx, opt, repo, nil, end)
	if err == nil || !strings.Contains(err.Error(), "stopped before storing WAL up to "+end.String()) {
		t.Fatalf("waiting for a stream that stopped: got %v; want the stop named at once", err)
	}
	// The box's own stream may not have taken the repository yet: with
	// Streamed, the backup waits.
	opt.Streamed, opt.WALWait = true, 100*time.Millisecond
	if err := awaitWAL(ctx, opt, repo, nil, end); err == nil || !strings.Contains(err.Error(), "has not stored WAL up to") {
		t.Fatalf("waiting for the box's stream: got %v; want it to wait until WALWait", err)
	}
}
