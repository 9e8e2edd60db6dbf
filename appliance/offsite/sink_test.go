package offsite

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
)

// record is one WAL record the fake vault was sent.
type record struct{ seg, offset, length int }

// TestSinkSendsBeforeTheSegmentFills streams three and a half MiB of a
// segment without the stream's Flush: the sink sends it in records of
// about a MiB as it arrives, in order and without a gap, holding at most
// a record and one message of WAL; the stream's Flush sends the rest, and
// a restreamed segment sends only what the vault lacks.
func TestSinkSendsBeforeTheSegmentFills(t *testing.T) {
	var mu sync.Mutex
	var got []record
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		seg, _ := strconv.Atoi(q.Get("seg"))
		off, _ := strconv.Atoi(q.Get("offset"))
		n, _ := strconv.Atoi(q.Get("length"))
		mu.Lock()
		got = append(got, record{seg, off, n})
		mu.Unlock()
		json.NewEncoder(w).Encode(wire.Position{Exists: true, Timeline: 1, Durable: archive.LSN(seg<<24 + off + n)})
	}))
	defer srv.Close()
	k := newTestSink(t, srv)
	const msg = 64 << 10
	chunk := bytes.Repeat([]byte("wal "), msg/4)
	lsn := archive.LSN(0)
	for range 56 { // 3.5 MiB
		if err := k.Write(lsn, chunk); err != nil {
			t.Fatal(err)
		}
		lsn += msg
		if c := cap(k.pending); c > 2*maxRecord {
			t.Fatalf("the sink holds %d bytes of WAL; want at most %d", c, 2*maxRecord)
		}
	}
	if n := sent(got); n < 3<<20 {
		t.Fatalf("before the stream's Flush the vault got %d bytes of %d; want all but less than a record", n, 56*msg)
	}
	if _, err := k.Flush(); err != nil {
		t.Fatal(err)
	}
	checkContiguous(t, got, 0, 56*msg)

	// The stream restarts at the segment's start; the vault holds a little
	// more than 3.5 MiB, ending inside a message.
	got = nil
	k.tli, k.seg, k.fill, k.sent, k.pending = 1, 0, 0, 56*msg+1000, k.pending[:0]
	for lsn = 0; lsn < 60*msg; lsn += msg {
		if err := k.Write(lsn, chunk); err != nil {
			t.Fatal(err)
		}
	}
	if len(k.pending) != 4*msg-1000 {
		t.Fatalf("the sink holds %d bytes to send; want the %d the vault lacks", len(k.pending), 4*msg-1000)
	}
	if _, err := k.Flush(); err != nil {
		t.Fatal(err)
	}
	checkContiguous(t, got, 56*msg+1000, 4*msg-1000)
}

func sent(rs []record) int {
	n := 0
	for _, r := range rs {
		n += r.length
	}
	return n
}

// checkContiguous checks that rs cover n bytes from off, in order.
func checkContiguous(t *testing.T, rs []record, off, n int) {
	t.Helper()
	at := off
	for _, r := range rs {
		if r.seg != 0 || r.offset != at || r.length > maxRecord+64<<10 {
			t.Fatalf("record %+v; want segment 0 at %d, at most %d bytes (all: %+v)", r, at, maxRecord+64<<10, rs)
		}
		at += r.length
	}
	if at != off+n {
		t.Fatalf("records end at %d; want %d (all: %+v)", at, off+n, rs)
	}
}

func newTestSink(t *testing.T, srv *httptest.Server) *sink {
	t.Helper()
	return sealedSink(t, Config{Name: "vault", DB: "postgres://unused", VaultURL: srv.URL, Client: srv.Client()}, 16<<20)
}
