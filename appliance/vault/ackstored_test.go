package vault

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/vault/store"
	"github.com/clinicbox/clinicbox/appliance/vault/store/storetest"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
)

// outage makes a store's writes fail while down is set, as an S3 server
// out of reach does.
type outage struct {
	store.Store
	down atomic.Bool
	// lose makes the next write succeed but answer as if it failed, as
	// a connection cut after the request was sent does.
	lose atomic.Bool
}

var errOutage = errors.New("the S3 server is out of reach")

func (o *outage) PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) (store.Info, error) {
	if o.down.Load() {
		return store.Info{}, errOutage
	}
	fi, err := o.Store.PutIfAbsent(ctx, key, r, size)
	if err == nil && o.lose.CompareAndSwap(true, false) {
		return store.Info{}, errOutage
	}
	return fi, err
}

// With acknowledgements meaning "stored in the bucket", a record the
// bucket could not take is refused and cut off the journal: the vault's
// position stays where the bucket's copy ends, the box sends the record
// again once the bucket is back, and the bucket then holds every
// acknowledged byte once. So too when the bucket stored the record but
// the answer was lost, and the box sends it again in a longer record.
func TestAckStoredRefusesWhatTheBucketLacks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		f := newFixture(t)
		out := &outage{Store: st}
		clk := &testClock{now: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
		a := f.node("a", out, clk, true)
		a.createRepo("box:1")
		box := &streamer{t: t}
		if code := box.send(a, 3*recordSize); code != 200 {
			t.Fatalf("streaming: %d", code)
		}
		out.down.Store(true)
		if code, _ := a.record("box:1", 0, 3*recordSize, walAt(3*recordSize)); code == 200 {
			t.Fatal("a record the bucket could not take was acknowledged")
		}
		var pos wire.Position
		a.do("box:1", "GET", "/v1/wal", nil, &pos)
		if pos.Durable != 3*recordSize {
			t.Errorf("position after the refused record: %d; want %d, the bucket's end", pos.Durable, 3*recordSize)
		}
		out.down.Store(false)
		out.lose.Store(true) // stored, but the vault hears it failed
		if code, _ := a.record("box:1", 0, 3*recordSize, walAt(3*recordSize)); code == 200 {
			t.Fatal("a record whose flush seemed to fail was acknowledged")
		}
		// The box sends the record again with the next one, as one.
		if code, p := a.record("box:1", 0, 3*recordSize, append(walAt(3*recordSize), walAt(4*recordSize)...)); code != 200 {
			t.Fatalf("the record sent again with the next: %d %s", code, p.Error)
		}
		box.sent = 5 * recordSize
		if code := box.send(a, 2*recordSize); code != 200 {
			t.Fatalf("streaming after the outage: %d", code)
		}
		checkBucket(t, f, st, box.sent)
	})
}
