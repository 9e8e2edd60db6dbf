package vault

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/vault/bucket"
	"github.com/clinicbox/clinicbox/appliance/vault/store"
	"github.com/clinicbox/clinicbox/appliance/vault/store/storetest"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
)

// A namespace moved on one vault node is moved on every node sharing the
// bucket. The move waits for the namespace's lease like any write; the
// node that was away reads the move when it next takes the lease, turns
// the old identity away and serves the new one the namespace; a node
// started afresh on the bucket has the move.
func TestMoveReachesEveryNode(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		clk, a, b, box := twoNodes(t, st)
		body := signedMove(boxSign, "nBOX1", "nNEW", clk.Now())
		var p wire.Problem
		if code := b.do("newbox:1", "POST", "/v1/move", body, &p); code != 503 || p.Code != "moved" {
			t.Fatalf("move on b while a holds the namespace: %d %q; want 503 moved", code, p.Error)
		}
		clk.add(testTTL + time.Second)
		var ans wire.MoveAnswer
		if code := b.do("newbox:1", "POST", "/v1/move", body, &ans); code != 200 || ans.Namespace != "nBOX1" {
			t.Fatalf("move on b after a's lease ran out: %d %+v; want 200 into nBOX1", code, ans)
		}
		if _, err := st.Stat(context.Background(), moveKey(1)); err != nil {
			t.Fatalf("the move is not in the bucket: %v", err)
		}

		// b's lease runs out; the old box calls on a, which held the
		// namespace before the move.
		clk.add(testTTL + time.Second)
		if code := box.send(a, recordSize); code != 403 {
			t.Errorf("the old identity on a after the move on b: %d; want 403", code)
		}
		var pos wire.Position
		if code := a.do("newbox:1", "GET", "/v1/wal", nil, &pos); code != 200 || int(pos.Durable) != 4*recordSize {
			t.Errorf("the new identity on a: %d at %d; want 200 at the old box's %d", code, pos.Durable, 4*recordSize)
		}
		if _, err := os.Stat(filepath.Join(a.dir, "boxes", "nNEW", "repo")); !os.IsNotExist(err) {
			t.Errorf("a made the new identity a repository of its own (%v)", err)
		}

		c := a.node("c", st, clk, false)
		var recs []moveRecord
		data, _ := os.ReadFile(filepath.Join(c.dir, movesFile))
		if err := json.Unmarshal(data, &recs); err != nil || len(recs) != 1 || recs[0].To != "nNEW" {
			t.Errorf("a node started on the bucket: moves.json %v %+v; want the move", err, recs)
		}
	})
}

// A vault given a bucket stores there the moves it made before; the
// bucket's moves are refused when one is missing from their numbering.
func TestBucketMoves(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		f := newFixture(t)
		f.createRepo("box:1")
		if code := f.do("newbox:1", "POST", "/v1/move", signedMove(boxSign, "nBOX1", "nNEW", time.Now()), nil); code != 200 {
			t.Fatalf("move: %d", code)
		}
		f.cfg.Bucket = bucket.New(st)
		f.open()
		list, err := readBucketMoves(ctx, st)
		if err != nil || len(list) != 1 || list[0].From != "nBOX1" {
			t.Fatalf("the bucket's moves after the vault got a bucket: %v %+v; want the one move", err, list)
		}
		data, _ := json.Marshal(list[0])
		if _, err := st.PutIfAbsent(ctx, moveKey(3), bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		if _, err := readBucketMoves(ctx, st); err == nil || !strings.Contains(err.Error(), moveKey(2)+" is missing") {
			t.Errorf("a gap in the bucket's moves: %v; want %s named missing", err, moveKey(2))
		}
	})
}
