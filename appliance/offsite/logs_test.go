package offsite

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/signer"
	"github.com/clinicbox/clinicbox/appliance/vault"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
	"github.com/clinicbox/clinicbox/drivers/tailnet"
	"github.com/clinicbox/clinicbox/rotation"
	"github.com/clinicbox/clinicbox/rotation/chain"
)

// oneBox identifies every caller as the box.
type oneBox struct{}

func (oneBox) WhoIs(context.Context, string) (tailnet.Peer, error) {
	return tailnet.Peer{StableID: "nBOX", Node: "box", Tags: []string{"tag:clinicbox"}}, nil
}

// logVault is a real vault behind its HTTP handler, recording the first
// entry of every batch it is sent.
type logVault struct {
	srv   *httptest.Server
	recip string // the box's age recipient
	mu    sync.Mutex
	// firsts are the first entry numbers of the batches sent, by log.
	firsts map[string][]int64
}

func newLogVault(t *testing.T) *logVault {
	v, err := vault.New(vault.Config{Dir: t.TempDir()}, oneBox{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	id, _ := age.GenerateX25519Identity()
	lv := &logVault{recip: id.Recipient().String(), firsts: map[string][]int64{}}
	lv.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			body, _ := io.ReadAll(r.Body)
			var b wire.LogBatch
			json.Unmarshal(body, &b)
			var first struct{ Seq int64 }
			if len(b.Entries) > 0 {
				json.Unmarshal(b.Entries[0], &first)
			}
			lv.mu.Lock()
			lv.firsts[r.URL.Path] = append(lv.firsts[r.URL.Path], first.Seq)
			lv.mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		v.ServeHTTP(w, r)
	}))
	t.Cleanup(lv.srv.Close)
	return lv
}

func (lv *logVault) sent(log string) []int64 {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	return lv.firsts["/v1/logs/"+log]
}

// shipper starts a box's shipper to the vault (a restart makes a new one).
func (lv *logVault) shipper(t *testing.T) *Shipper {
	s, err := New(Config{Name: "home", DB: "postgres://box@db/postgres", VaultURL: lv.srv.URL, Recipients: []string{lv.recip}, Signer: testSign}, nil)
	if err != nil {
		t.Fatal(err)
	}
	info := archive.Info{Format: archive.FormatVersion, SystemID: "7300000000000000001", SegmentSize: 1 << 20, Recipients: []string{lv.recip},
		Signer: testSign.Public().String()}
	if err := s.call(context.Background(), "PUT", "/v1/repo", nil, mustJSON(info), nil); err != nil {
		t.Fatal(err)
	}
	return s
}

var testSign = signer.FromSeed(bytes.Repeat([]byte("b"), 32))

// custodyFile writes n signed custody entries of a drive, the sixth on
// with reasons of that many bytes, and returns the log.
func custodyFile(t *testing.T, path, drive string, n, reasons int) *FileLog {
	keys := chain.Keys{Signer: testSign, Public: testSign.Public()}
	l := rotation.Continue(nil, keys)
	for i := range n {
		why := "inserted"
		if i >= 5 {
			why = string(bytes.Repeat([]byte("r"), reasons))
		}
		l.Append(rotation.Entry{Time: time.Date(2026, 3, 2, 8, i, 0, 0, time.UTC), Drive: rotation.DriveID(drive), Event: "insert", Decision: rotation.Accepted, Reasons: []string{why}})
	}
	var b bytes.Buffer
	rotation.WriteEntries(&b, l.Entries()...)
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return &FileLog{Name: "custody", Files: func() []string { return []string{path} }, Keys: keys}
}

// A restarted box asks the vault where its logs stand and sends only what
// the vault lacks; a long log goes in batches the vault takes.
func TestShipLogsResumesAfterRestart(t *testing.T) {
	lv := newLogVault(t)
	path := filepath.Join(t.TempDir(), "custody.jsonl")
	ctx := context.Background()
	log := custodyFile(t, path, "A", 3, 10)
	if err := lv.shipper(t).ShipLogs(ctx, []*FileLog{log}); err != nil {
		t.Fatal(err)
	}
	custodyFile(t, path, "A", 5, 10) // the same first 3, and two more
	restarted := lv.shipper(t)
	if err := restarted.ShipLogs(ctx, []*FileLog{log}); err != nil {
		t.Fatal(err)
	}
	if got := lv.sent("custody"); len(got) != 2 || got[0] != 1 || got[1] != 4 {
		t.Errorf("batches started at %v; want [1 4]", got)
	}
	if h, _ := restarted.LogHead("custody"); h.Seq != 5 {
		t.Errorf("the vault's head: got %d; want 5", h.Seq)
	}
	custodyFile(t, path, "A", 700, 2000) // about 1.5 MiB
	if err := restarted.ShipLogs(ctx, []*FileLog{log}); err != nil {
		t.Fatal(err)
	}
	if got := lv.sent("custody"); len(got) < 2+5 {
		t.Errorf("batches started at %v; want a batch per %d bytes", got, logBatchBytes)
	}
	if h, _ := restarted.LogHead("custody"); h.Seq != 700 {
		t.Errorf("the vault's head: got %d; want 700", h.Seq)
	}
}

// A box whose log is behind the vault's (an old copy restored, or cut)
// reports the refusal and does not try again.
func TestShipLogsRefusedIsReported(t *testing.T) {
	lv := newLogVault(t)
	dir := t.TempDir()
	ctx := context.Background()
	s := lv.shipper(t)
	if err := s.ShipLogs(ctx, []*FileLog{custodyFile(t, filepath.Join(dir, "custody.jsonl"), "A", 5, 10)}); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.jsonl")
	for _, tc := range []struct {
		name string
		log  *FileLog
	}{
		{"the box's log is shorter than the vault's", custodyFile(t, filepath.Join(dir, "old.jsonl"), "A", 3, 10)},
		{"the box's log differs from the vault's", custodyFile(t, other, "B", 7, 10)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			restarted := lv.shipper(t)
			for range 2 {
				var refused *LogRefused
				if err := restarted.ShipLogs(ctx, []*FileLog{tc.log}); !errors.As(err, &refused) {
					t.Errorf("got %v; want the vault's refusal", err)
				}
			}
			if st := restarted.Status(); st.LogsRefused == "" {
				t.Errorf("status: got no refusal; want it shown")
			}
		})
	}
	if got := lv.sent("custody"); len(got) != 2 {
		t.Errorf("batches started at %v; want the first and one refused, not retried", got)
	}
}

// A box that no longer has the entries the vault lacks (its oldest files
// were removed) reports it once instead of trying again every few minutes.
func TestShipLogsGapReported(t *testing.T) {
	lv := newLogVault(t)
	dir := t.TempDir()
	ctx := context.Background()
	s := lv.shipper(t)
	if err := s.ShipLogs(ctx, []*FileLog{custodyFile(t, filepath.Join(dir, "first.jsonl"), "A", 3, 10)}); err != nil {
		t.Fatal(err)
	}
	full := filepath.Join(dir, "full.jsonl")
	log := custodyFile(t, full, "A", 10, 10)
	b, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	if err := os.WriteFile(full, bytes.Join(lines[5:], nil), 0o600); err != nil { // entries 6 to 10
		t.Fatal(err)
	}
	var refused *LogRefused
	if err := s.ShipLogs(ctx, []*FileLog{log}); !errors.As(err, &refused) {
		t.Fatalf("got %v; want the gap reported as a refusal", err)
	}
	if st := s.Status(); st.LogsRefused == "" {
		t.Errorf("status: got no refusal; want it shown")
	}
}
