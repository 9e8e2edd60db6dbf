package vault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/vault/bucket"
	"github.com/clinicbox/clinicbox/appliance/vault/store"
	"github.com/clinicbox/clinicbox/appliance/vault/store/storetest"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
)

// testClock is the clock the vault nodes of a test share.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

const testTTL = 30 * time.Second

// node starts a vault node named name on its own directory, sharing the
// bucket and the clock; the nodes of a test serve one box, f's.
func (f *fixture) node(name string, st store.Store, clk *testClock, ackStored bool) *fixture {
	g := &fixture{t: f.t, dir: f.t.TempDir(), info: f.info, ids: f.ids, sealer: f.sealer}
	g.cfg = Config{Bucket: bucket.New(st), Node: name, LeaseTTL: testTTL, Now: clk.Now, AckStored: ackStored}
	g.open()
	return g
}

// streamer is a box sending WAL of recognizable bytes in records of 64 KiB.
type streamer struct {
	t    *testing.T
	sent int // WAL bytes acknowledged
}

const recordSize = 64 << 10

func walAt(lsn int) []byte {
	b := make([]byte, recordSize)
	for i := range b {
		b[i] = byte((lsn + i) / 7)
	}
	return b
}

// walNode is a vault node as a box reaches it: in this process (a
// fixture) or a clinicvault process over the tailnet.
type walNode interface {
	do(peer, method, target string, body []byte, out any) int
	record(peer string, seg uint64, off int, data []byte) (int, wire.Problem)
}

// send streams records to the node until n bytes are acknowledged or it
// refuses one; it returns the refusal's status.
func (s *streamer) send(node walNode, n int) int {
	s.t.Helper()
	var pos wire.Position
	if code := node.do("box:1", "GET", "/v1/wal", nil, &pos); code != 200 {
		return code
	}
	if int(pos.Durable) > s.sent {
		s.t.Fatalf("the node holds WAL to %d, past the %d bytes ever acknowledged", pos.Durable, s.sent)
	}
	at := int(pos.Durable)
	segStart := at - at%segSize
	if code := node.do("box:1", "POST", fmt.Sprintf("/v1/wal/begin?tli=1&lsn=%d", segStart), nil, nil); code != 200 {
		return code
	}
	for end := at + n; at < end; at += recordSize {
		if code, p := node.record("box:1", uint64(at/segSize), at%segSize, walAt(at)); code != 200 {
			s.t.Logf("record at %d: %d %s", at, code, p.Error)
			return code
		}
		s.sent = max(s.sent, at+recordSize)
	}
	return 200
}

// checkBucket reads the box's WAL back from the bucket alone, through a
// new node, and compares it with what the box sent: every acknowledged
// byte there once, in order.
func checkBucket(t *testing.T, f *fixture, st store.Store, want int) {
	t.Helper()
	got, err := bucketWAL(t, f, st, "nBOX1", want)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("the bucket holds %d bytes of WAL; want the %d acknowledged", got, want)
	}
}

// errWALDiffers: the bucket holds WAL other than what the box sent.
var errWALDiffers = errors.New("WAL in the bucket differs from what the box sent")

// bucketWAL reads namespace ns's WAL back from the bucket alone, through
// a new node, and returns how many bytes from the start match what the
// box sent (walAt), reading at most up to want; WAL that differs is
// errWALDiffers.
func bucketWAL(t *testing.T, f *fixture, st store.Store, ns string, want int) (int, error) {
	t.Helper()
	g := &fixture{t: t, dir: t.TempDir(), cfg: Config{Bucket: bucket.New(st)}}
	g.open()
	defer g.v.Close()
	if _, err := g.v.Rehydrate(context.Background(), st, ns); err != nil {
		return 0, err
	}
	repo, err := archive.Open(filepath.Join(g.dir, "boxes", ns, "repo"))
	if err != nil {
		return 0, err
	}
	repo.Trust(testSigner.Public())
	got := 0
	for seg := uint64(0); got < want; seg++ {
		sd, err := repo.ReadSegment(1, seg, f.ids)
		if err != nil {
			return got, fmt.Errorf("segment %d from the bucket: %w (%d of %d bytes read)", seg, err, got, want)
		}
		for off := 0; off < sd.Valid; off += recordSize {
			if !bytes.Equal(sd.Data[off:off+recordSize], walAt(got)) {
				return got, fmt.Errorf("%w: at %d", errWALDiffers, got)
			}
			got += recordSize
		}
		if sd.Valid < segSize {
			break
		}
	}
	return got, nil
}

// Node a streams a box's WAL and dies without a word; node b refuses the
// box while a's lease runs, then takes the box over, reading the
// namespace back from the bucket before acknowledging anything, and the
// box goes on from b's position. With acknowledgements meaning "stored in
// the bucket", b continues exactly where a's last acknowledgement ended;
// by default, where a's last flush ended, and the box sends the rest
// again. Either way the bucket ends up holding every acknowledged byte
// exactly once.
func TestTakeOverLosesAndDuplicatesNothing(t *testing.T) {
	for _, ackStored := range []bool{false, true} {
		t.Run(fmt.Sprintf("ack_stored=%v", ackStored), func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, st store.Store) {
				f := newFixture(t)
				clk := &testClock{now: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
				a, b := f.node("a", st, clk, ackStored), f.node("b", st, clk, ackStored)
				a.createRepo("box:1")
				box := &streamer{t: t}
				if code := box.send(a, segSize+5*recordSize); code != 200 {
					t.Fatalf("streaming to a: %d", code)
				}
				a.offload()
				if code := box.send(a, 3*recordSize); code != 200 { // acknowledged, not offloaded
					t.Fatalf("streaming to a: %d", code)
				}
				acked := box.sent
				// a is gone (killed: nothing closed, nothing flushed).
				clk.add(testTTL / 2)
				if code := box.send(b, recordSize); code != http.StatusServiceUnavailable {
					t.Fatalf("b while a's lease runs: %d; want 503 (moved)", code)
				}
				clk.add(testTTL)
				var pos wire.Position
				if code := b.do("box:1", "GET", "/v1/wal", nil, &pos); code != 200 {
					t.Fatalf("b after a's lease ran out: %d", code)
				}
				wantPos := segSize + 5*recordSize
				if ackStored {
					wantPos = acked
				}
				if int(pos.Durable) != wantPos {
					t.Errorf("b took over at %d; want %d (a acknowledged %d)", pos.Durable, wantPos, acked)
				}
				if code := box.send(b, segSize); code != 200 {
					t.Fatalf("streaming to b: %d", code)
				}
				b.offload()
				checkBucket(t, f, st, box.sent)
			})
		})
	}
}

// Node a creates a box's repository, which stores its description in
// the bucket at once, and dies before its first offload: the bucket holds
// the description and nothing else. Node b takes the box over once a's
// lease runs out, and the box streams to it from the start.
func TestTakeOverBeforeTheFirstOffload(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		f := newFixture(t)
		clk := &testClock{now: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
		a, b := f.node("a", st, clk, false), f.node("b", st, clk, false)
		a.createRepo("box:1")
		clk.add(testTTL + time.Second) // a is gone
		var p wire.Problem
		if code := b.do("box:1", "GET", "/v1/wal", nil, &p); code != 200 {
			t.Fatalf("b taking the box over: %d %s; want 200", code, p.Error)
		}
		box := &streamer{t: t}
		if code := box.send(b, 3*recordSize); code != 200 {
			t.Fatalf("streaming to b: %d", code)
		}
		b.offload()
		checkBucket(t, f, st, box.sent)
	})
}

// twoNodes starts vault nodes a and b on one bucket and one clock; a box
// streams 4 records to a, which offloads them.
func twoNodes(t *testing.T, st store.Store) (clk *testClock, a, b *fixture, box *streamer) {
	t.Helper()
	f := newFixture(t)
	clk = &testClock{now: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
	a, b = f.node("a", st, clk, false), f.node("b", st, clk, false)
	a.createRepo("box:1")
	box = &streamer{t: t}
	if code := box.send(a, 4*recordSize); code != 200 {
		t.Fatalf("streaming to a: %d", code)
	}
	a.offload()
	return clk, a, b, box
}

// Node a is paused past its lease while b takes the box over. When a
// resumes it acknowledges nothing more and writes nothing into the
// bucket: its renewal, a conditional write on the lease's ETag, fails.
func TestPausedHolderWritesNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		clk, a, b, box := twoNodes(t, st)
		if code := box.send(a, 2*recordSize); code != 200 { // in a's journal only
			t.Fatalf("streaming to a: %d", code)
		}
		clk.add(testTTL + time.Second) // a is paused
		if code := box.send(b, 2*recordSize); code != 200 {
			t.Fatalf("streaming to b after a's lease ran out: %d", code)
		}
		var before []string
		st.List(ctx, "nBOX1/", func(fi store.Info) error { before = append(before, fi.Key+"@"+fi.ETag); return nil })

		// a resumes: with the record it was about to store, and its offload pass.
		if code, p := a.record("box:1", 0, 6*recordSize, walAt(6*recordSize)); code != http.StatusServiceUnavailable || p.Code != "moved" {
			t.Errorf("a acknowledging after losing its lease: %d %q; want 503 moved", code, p.Code)
		}
		if err := a.v.Offload(ctx); err != nil {
			t.Errorf("a's offload after losing its lease: %v", err)
		}
		var after []string
		st.List(ctx, "nBOX1/", func(fi store.Info) error { after = append(after, fi.Key+"@"+fi.ETag); return nil })
		if fmt.Sprint(before) != fmt.Sprint(after) {
			t.Errorf("a wrote into the bucket after losing its lease:\nbefore %v\nafter  %v", before, after)
		}
		if code := box.send(b, recordSize); code != 200 {
			t.Errorf("b refused the box after a resumed: %d", code)
		}
	})
}

// Node b takes a box over from a, reading the namespace back from the
// bucket, renews its lease and offloads: the lease object in the bucket
// stays b's live lease, never a copy read back with the namespace, and
// b's next renewal, a conditional write on the ETag it holds, succeeds.
func TestTakeOverLeavesTheLeaseInTheBucket(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		clk, _, b, box := twoNodes(t, st)
		clk.add(testTTL + time.Second) // a is gone
		if code := box.send(b, 2*recordSize); code != 200 {
			t.Fatalf("streaming to b after a's lease ran out: %d", code)
		}
		clk.add(time.Second) // b's renewal before its offload writes a new expiry
		b.offload()
		l, err := b.cfg.Bucket.Acquire(ctx, "nBOX1", "c", clk.Now(), testTTL)
		if err == nil {
			t.Fatalf("node c took the lease at once after b's offload (it read %s's, expiring %s)", l.From, l.Expires)
		}
		if ok, err := b.v.fence(ctx, "nBOX1"); !ok || err != nil {
			t.Errorf("b renewing its lease after its offload: %v, %v; want it still held", ok, err)
		}
		if _, err := os.Stat(filepath.Join(b.dir, "boxes", "nBOX1", "repo", bucket.LeaseName)); err == nil {
			t.Errorf("the lease object was read back into b's repository")
		}
	})
}

// Node b takes the box over from a. Node a's directory still holds the
// namespace as it was, stale: while b's lease runs, a answers reads of
// it with "moved", naming b. Once b's lease has run out, a takes the
// namespace back, reads it from the bucket first, and serves what b
// stored.
func TestNonHolderServesNoStaleReads(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		clk, a, b, box := twoNodes(t, st)
		clk.add(testTTL + time.Second) // a is paused
		if code := box.send(b, 2*recordSize); code != 200 {
			t.Fatalf("streaming to b after a's lease ran out: %d", code)
		}
		b.offload()
		var want []wire.FileEntry
		if code := b.do("restore:1", "GET", "/v1/files?box=nBOX1", nil, &want); code != 200 {
			t.Fatalf("listing on b, the holder: %d", code)
		}
		var p wire.Problem
		code := a.do("restore:1", "GET", "/v1/files?box=nBOX1", nil, &p)
		if code != http.StatusServiceUnavailable || p.Code != "moved" || !strings.Contains(p.Error, "(b, until") {
			t.Errorf("listing on a while b holds the lease: %d %q %q; want 503 moved naming b", code, p.Code, p.Error)
		}
		if code := a.do("restore:1", "GET", "/v1/files/wal/state.json?box=nBOX1", nil, &p); code != http.StatusServiceUnavailable {
			t.Errorf("reading a file on a while b holds the lease: %d; want 503", code)
		}

		clk.add(testTTL + time.Second) // b is gone
		var got []wire.FileEntry
		if code := a.do("restore:1", "GET", "/v1/files?box=nBOX1", nil, &got); code != 200 {
			t.Fatalf("listing on a after b's lease ran out: %d", code)
		}
		noState := func(e wire.FileEntry) bool { return strings.HasPrefix(e.Path, "wal/state.json") }
		want, got = slices.DeleteFunc(want, noState), slices.DeleteFunc(got, noState)
		if !slices.Equal(got, want) {
			t.Errorf("a's files after taking the namespace back:\n%v\nwant b's\n%v", got, want)
		}
	})
}

// A node whose lease runs out while it appends a record answers "moved"
// and keeps nothing of the record: on renewing its lease it reports the
// WAL the box was acknowledged, not the record it refused.
func TestLeaseLostMidAppendKeepsNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		clk, a, _, box := twoNodes(t, st)
		testHookAfterAppend = func() { clk.add(testTTL) }
		code := box.send(a, recordSize)
		testHookAfterAppend = nil
		if code != http.StatusServiceUnavailable {
			t.Fatalf("a record appended as the lease ran out: %d; want 503 moved", code)
		}
		var pos wire.Position
		if code := a.do("box:1", "GET", "/v1/wal", nil, &pos); code != 200 || int(pos.Durable) != box.sent {
			t.Errorf("a after renewing its lease: %d at %d; want 200 at the %d bytes acknowledged", code, pos.Durable, box.sent)
		}
		if code := box.send(a, 2*recordSize); code != 200 {
			t.Errorf("the box sending again: %d", code)
		}
		a.offload()
		checkBucket(t, a, st, box.sent)
	})
}
