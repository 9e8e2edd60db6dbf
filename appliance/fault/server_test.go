package fault

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
	"github.com/clinicbox/clinicbox/drivers/testenv"
)

// catchUp waits until the streamer stored everything the server wrote on
// timeline tli, then stops it cleanly.
func (b *box) catchUp(t *testing.T, c *pgtest.Cluster, tli uint32) {
	t.Helper()
	s := b.stream
	defer func() {
		if t.Failed() {
			t.Logf("stream output:\n%s", s.Output())
		}
	}()
	b.waitCaughtUp(t, c, tli)
	if err := b.stream.Interrupt(); err != nil {
		t.Errorf("stream after SIGINT: %v\n%s", err, b.stream.Output())
	}
	b.stream = nil
}

// waitCaughtUp waits until the streamer stored everything the server wrote
// on timeline tli, and leaves it running.
func (b *box) waitCaughtUp(t *testing.T, c *pgtest.Cluster, tli uint32) {
	t.Helper()
	s := b.stream
	target, err := c.CurrentLSN(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the stream to store WAL up to "+target.String(), 2*time.Minute, func() bool {
		r, err := archive.OpenFirstUse(b.dir)
		if err != nil {
			return false
		}
		st, _ := r.WALState()
		return st.Timeline == tli && st.Flushed >= target
	}, s.Progress)
}

// The database server restarted under the streamer, cleanly and as after a
// crash: the stream reconnects and stores everything with no gap.
func TestDatabaseRestarted(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{})
	b := &box{t: t, c: c, dir: filepath.Join(testenv.SharedDir(t), "repo"), k: newKey(t)}
	b.startStream()
	if p := b.start("backup"); p.Err() != nil {
		t.Fatalf("backup: %v\n%s", p.Err(), p.Output())
	}
	for _, mode := range []string{"fast", "immediate"} {
		t.Run(mode, func(t *testing.T) {
			tr := newTry(t, "database server restarted under the stream ("+mode+" shutdown)")
			b.t = t
			if b.stream == nil {
				b.startStream()
			}
			bulkWAL(t, c, 20000)
			if err := c.Restart(context.Background(), mode); err != nil {
				t.Fatal(err)
			}
			bulkWAL(t, c, 20000)
			s := b.stream
			b.catchUp(t, c, 1)
			b.checkAfterKill(t)
			said := firstLine(s.Output(), "reconnecting")
			tr.Outcome = "stream reconnected by itself and stored all WAL; no gap"
			if said != "" {
				tr.Outcome += " (logged: WAL stream interrupted; reconnecting)"
			}
		})
	}
}

// The server the box streams from (a standby) is promoted: the stream
// follows the new timeline, stores its history file, and the repository
// verifies.
func TestDatabasePromoted(t *testing.T) {
	primary := pgtest.New(t, pgtest.Options{})
	ctx := context.Background()
	standby, err := primary.StartStandby(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(standby.Stop)
	tr := newTry(t, "database server promoted (new timeline) under the stream")
	b := &box{t: t, c: standby, dir: filepath.Join(testenv.SharedDir(t), "repo"), k: newKey(t)}
	bulkWAL(t, primary, 20000)
	b.startStream()
	if err := standby.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	bulkWAL(t, standby, 20000)
	b.catchUp(t, standby, 2)
	b.checkAfterKill(t)
	repo, err := archive.OpenFirstUse(b.dir)
	if err != nil {
		t.Fatal(err)
	}
	tls, err := repo.Timelines()
	if err != nil {
		t.Fatal(err)
	}
	if len(tls) != 2 || !tls[1].HasHistory {
		t.Fatalf("got %d timelines; want 2, the second with its history file", len(tls))
	}
	tr.Outcome = "stream followed timeline 2 and stored its history file; repository verifies"
}

// Someone dropped the box's slot while the streamer was down and the
// server recycled the WAL it had kept: the box says what happened and what
// it needs instead of streaming on silently.
func TestSlotDropped(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{})
	b := &box{t: t, c: c, dir: filepath.Join(testenv.SharedDir(t), "repo"), k: newKey(t)}
	b.startStream()
	if p := b.start("backup"); p.Err() != nil {
		t.Fatalf("backup: %v\n%s", p.Err(), p.Output())
	}
	b.stream.Kill()
	b.stream = nil
	tr := newTry(t, "replication slot dropped by someone while the box was off")
	// The walsender notices the killed stream only when its socket read
	// fails: until then the slot is active and cannot be dropped.
	var dropErr error
	waitUntil(t, "the slot to be dropped once its walsender has gone", 2*time.Minute, func() bool {
		dropErr = c.Exec(t.Context(), "SELECT pg_drop_replication_slot('"+slot+"')")
		return dropErr == nil
	})
	for range 3 {
		bulkWAL(t, c, 20000)
		c.MustExec(t, "SELECT pg_switch_wal()", "CHECKPOINT")
	}
	p := b.start("stream")
	defer func() {
		if t.Failed() {
			t.Logf("stream output:\n%s", p.Output())
		}
	}()
	waitUntil(t, "the stream to say what happened", 2*time.Minute, func() bool {
		return strings.Contains(p.Output(), "created again")
	}, p.Progress)
	said := firstLine(p.Output(), "created again")
	if !strings.Contains(said, "WARN") || !strings.Contains(said, "new base backup") {
		t.Errorf("stream said %q; want a warning that a new base backup is needed", said)
	}
	before := b.flushed()
	bulkWAL(t, c, 5000)
	waitUntil(t, "the stream to store WAL after the gap", 2*time.Minute, func() bool { return b.flushed() > before }, p.Progress)
	p.Kill()
	rep := verifyRepo(t, b.dir, b.k)
	for _, pr := range rep.Problems {
		t.Errorf("verify: %s", pr)
	}
	gap := ""
	for _, n := range rep.Notes {
		if strings.Contains(n, "no WAL from") {
			gap = n
		}
	}
	if gap == "" {
		t.Fatalf("got notes %q; want the gap left by the dropped slot named", rep.Notes)
	}
	tr.Outcome = "stream recreated the slot and started afresh, warning that the WAL in between is lost and a new base backup is needed (" + shorten(said) + "); verify names the gap: " + gap + "; the appliance takes that backup at once (appliance TestDroppedSlotStartsNewBackup)"
	tr.Lost = "the WAL the server recycled after the slot was dropped (point-in-time restore impossible across the gap; the next base backup starts a new window)"
}
