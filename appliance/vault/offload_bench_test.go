package vault

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"filippo.io/age"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/vault/bucket"
	"github.com/clinicbox/clinicbox/appliance/vault/store"
	"github.com/clinicbox/clinicbox/appliance/vault/store/storetest"
	"github.com/clinicbox/clinicbox/drivers/tailnet"
)

// BenchmarkOffloadPass measures one offload pass over 50 to 200 boxes that
// each gained a WAL record since the last: the bucket's lag behind the
// acknowledged WAL is the offload interval plus this. It reports the
// pass's time per box and the S3 requests per box.
func BenchmarkOffloadPass(b *testing.B) {
	for _, n := range []int{50, 100, 200} {
		b.Run(fmt.Sprintf("boxes=%d", n), func(b *testing.B) { benchOffload(b, n) })
	}
}

func benchOffload(b *testing.B, boxes int) {
	srv := storetest.StartVersityGW(b, storetest.Options{})
	st := &requests{Store: srv.Open(b)}
	ps := peers{}
	for i := range boxes {
		ps[fmt.Sprintf("box%d:1", i)] = tailnet.Peer{StableID: fmt.Sprintf("nB%03d", i), Node: "box", Tags: []string{"tag:clinicbox"}}
	}
	v, err := New(Config{Dir: b.TempDir(), Bucket: bucket.New(st)}, ps, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	id, _ := age.GenerateX25519Identity()
	info := archive.Info{Format: archive.FormatVersion, SystemID: "7300000000000000001", SegmentSize: segSize, ServerVersion: 150000,
		Recipients: []string{id.Recipient().String()}, Signer: testSigner.Public().String()}
	sealer, _ := archive.NewWALSealer(info, testSigner)
	send := func(peer, method, target string, body []byte) {
		r := httptest.NewRequest(method, target, bytes.NewReader(body))
		r.RemoteAddr = peer
		w := httptest.NewRecorder()
		v.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatalf("%s %s: %d %s", method, target, w.Code, w.Body)
		}
	}
	ib, _ := json.Marshal(info)
	for p := range ps {
		send(p, "PUT", "/v1/repo", ib)
		send(p, "POST", "/v1/wal/begin?tli=1&lsn=0", nil)
	}
	off := 0
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		data := walBytes(8000, byte(off))
		rec, _ := sealer.Record(1, 0, off, data)
		for p := range ps {
			send(p, "POST", fmt.Sprintf("/v1/wal/record?tli=1&seg=0&offset=%d&length=%d", off, len(data)), rec)
		}
		off += len(data)
		st.n.Store(0)
		b.StartTimer()
		if err := v.Offload(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		b.ReportMetric(float64(st.n.Load())/float64(boxes), "requests/box")
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(boxes)/1000, "ms/box")
}

// requests counts the store calls that are one S3 request each (List is
// one per thousand keys, counted as one).
type requests struct {
	store.Store
	n atomic.Int64
}

func (r *requests) PutIfAbsent(ctx context.Context, key string, rd io.Reader, size int64) (store.Info, error) {
	r.n.Add(1)
	return r.Store.PutIfAbsent(ctx, key, rd, size)
}

func (r *requests) PutIfMatch(ctx context.Context, key string, rd io.Reader, size int64, etag string) (store.Info, error) {
	r.n.Add(1)
	return r.Store.PutIfMatch(ctx, key, rd, size, etag)
}

func (r *requests) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, error) {
	r.n.Add(1)
	return r.Store.Get(ctx, key, off, n)
}

func (r *requests) Stat(ctx context.Context, key string) (store.Info, error) {
	r.n.Add(1)
	return r.Store.Stat(ctx, key)
}

func (r *requests) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	r.n.Add(1)
	return r.Store.List(ctx, prefix, fn)
}

func (r *requests) Delete(ctx context.Context, key string) error {
	r.n.Add(1)
	return r.Store.Delete(ctx, key)
}
