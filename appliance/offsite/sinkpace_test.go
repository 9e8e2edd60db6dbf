package offsite

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/signer"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
)

// recordVault answers WAL records in process, counting them and keeping
// the headers of the last request.
type recordVault struct {
	mu      sync.Mutex
	records int
	lengths []string // each record's WAL length, as asked
	header  http.Header
}

func (v *recordVault) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	v.mu.Lock()
	v.records++
	v.lengths = append(v.lengths, r.URL.Query().Get("length"))
	v.header = r.Header.Clone()
	v.mu.Unlock()
	json.NewEncoder(w).Encode(wire.Position{Exists: true, Timeline: 1})
}

// RoundTrip serves a request in process.
func (v *recordVault) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	v.ServeHTTP(rec, r)
	return rec.Result(), nil
}

func (v *recordVault) count() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.records
}

// testSink is a sink on segment 1 of timeline 1 whose records go to client.
func testSink(t *testing.T, client *http.Client, bw Bandwidth, stop context.Context) *sink {
	t.Helper()
	k := sealedSink(t, Config{Name: "t", DB: "postgres://box@db/postgres", VaultURL: "http://vault", Client: client, Bandwidth: bw}, 1<<20)
	k.stop, k.seg = stop, 1
	return k
}

// sealedSink is a sink of a shipper set up by cfg, with a fresh recipient
// and a fixed signing key, for segments of segSize bytes, on timeline 1.
func sealedSink(t *testing.T, cfg Config, segSize uint64) *sink {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	key := signer.FromSeed(bytes.Repeat([]byte{3}, 32))
	cfg.Recipients, cfg.Signer = []string{id.Recipient().String()}, key
	sh, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	info := archive.Info{Format: archive.FormatVersion, SystemID: "1", SegmentSize: segSize, ServerVersion: 150000, Recipients: cfg.Recipients, Signer: key.Public().String()}
	sealer, err := archive.NewWALSealer(info, key)
	if err != nil {
		t.Fatal(err)
	}
	return &sink{s: sh, ctx: context.Background(), stop: context.Background(), sealer: sealer, size: segSize, tli: 1, began: true}
}

// Under a cap, WAL that arrives at every flush interval goes in one record
// per record gap, not one per flush; without a cap every flush sends; and
// a stopping stream sends what it holds at once.
func TestWALRecordsPacedByTheCap(t *testing.T) {
	for _, tc := range []struct {
		name     string
		bw       Bandwidth
		min, max int
	}{
		{"no cap", Bandwidth{}, 50, 50},
		{"96 kbit/s", OfficeHours(0, 24, 96000, 96000), 8, 10}, // a record every 1.2 s (the gap, 1.07 s, rounded up to a flush)
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := &recordVault{}
			stop, cancel := context.WithCancel(context.Background())
			k := testSink(t, &http.Client{Transport: v}, tc.bw, stop)
			now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
			k.clock = func() time.Time { return now }
			lsn := archive.LSN(1 << 20)
			for range 50 {
				if err := k.Write(lsn, make([]byte, 100)); err != nil {
					t.Fatal(err)
				}
				lsn += 100
				got, err := k.Flush()
				if err != nil {
					t.Fatal(err)
				}
				if got > lsn || got < archive.LSN(1<<20) {
					t.Fatalf("flush answered %s with WAL received up to %s", got, lsn)
				}
				now = now.Add(200 * time.Millisecond)
			}
			if n := v.count(); n < tc.min || n > tc.max {
				t.Errorf("%d records for 50 flushes in 10 s; want %d to %d", n, tc.min, tc.max)
			}
			cancel()
			got, err := k.Flush()
			if err != nil || got != lsn {
				t.Errorf("the stopping stream's flush: %s, %v; want all WAL sent, up to %s", got, err, lsn)
			}
		})
	}
}

// A WAL record's request carries no header the vault does not read.
func TestWALRecordHeaders(t *testing.T) {
	v := &recordVault{}
	srv := httptest.NewServer(v)
	defer srv.Close()
	k := testSink(t, srv.Client(), Bandwidth{}, context.Background())
	k.s.vault.bases = []string{srv.URL}
	if err := k.Write(1<<20, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"User-Agent", "Content-Type"} {
		if got := v.header.Get(h); got != "" {
			t.Errorf("a WAL record's request carries %s: %q; want none", h, got)
		}
	}
}

// A backlog goes in records of at most maxRecordWAL bytes of WAL, each
// acknowledged as it is stored: one record of everything could outlast
// the request's time limit on a slow uplink, and would be retried whole
// for ever.
func TestBacklogInBoundedRecords(t *testing.T) {
	v := &recordVault{}
	k := testSink(t, &http.Client{Transport: v}, Bandwidth{}, context.Background())
	var acks []archive.LSN
	k.s.cfg.OnDurable = func(_ uint32, lsn archive.LSN) { acks = append(acks, lsn) }
	const start = archive.LSN(1 << 20)
	if err := k.Write(start, make([]byte, 3*maxRecordWAL+100)); err != nil {
		t.Fatal(err)
	}
	got, err := k.Flush()
	if err != nil || got != start+3*maxRecordWAL+100 {
		t.Fatalf("flush: %s, %v; want %s", got, err, start+3*maxRecordWAL+100)
	}
	if want := []string{"262144", "262144", "262144", "100"}; !slices.Equal(v.lengths, want) {
		t.Errorf("records of %v bytes of WAL; want %v", v.lengths, want)
	}
	for _, want := range []archive.LSN{start + maxRecordWAL, start + 2*maxRecordWAL, start + 3*maxRecordWAL} {
		if !slices.Contains(acks, want) {
			t.Errorf("acknowledged %v; want %s among them", acks, want)
		}
	}
}
