package vault

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/drivers/tailnet"
)

// peers identifies callers by their address, as the tailnet would.
type peers map[string]tailnet.Peer

func (p peers) WhoIs(_ context.Context, addr string) (tailnet.Peer, error) {
	if peer, ok := p[addr]; ok {
		return peer, nil
	}
	return tailnet.Peer{}, errors.New("unknown peer")
}

var testPeers = peers{
	"box:1":     {StableID: "nBOX1", Node: "box", Tags: []string{"tag:clinicbox"}},
	"box2:1":    {StableID: "nBOX2", Node: "box2", Tags: []string{"tag:clinicbox"}},
	"support:1": {StableID: "nSUP", Node: "support", Tags: []string{"tag:support"}},
	"restore:1": {StableID: "nRES", Node: "restore", Tags: []string{"tag:clinicrestore"}},
	"laptop:1":  {StableID: "nLAP", Node: "laptop", Login: "doctor@example.com"},
	"printer:1": {StableID: "nPRN", Node: "printer", Tags: []string{"tag:printer"}},
}

const segSize = 1 << 20

type fixture struct {
	t      *testing.T
	dir    string
	cfg    Config // Dir is set by open
	v      *Vault
	info   archive.Info
	ids    []age.Identity
	sealer *archive.WALSealer
}

func newFixture(t *testing.T) *fixture {
	id, _ := age.GenerateX25519Identity()
	f := &fixture{t: t, dir: t.TempDir(), ids: []age.Identity{id},
		info: archive.Info{Format: archive.FormatVersion, SystemID: "7300000000000000001", SegmentSize: segSize, ServerVersion: 150000,
			Recipients: []string{id.Recipient().String()}, Signer: testSigner.Public().String()}}
	f.open()
	var err error
	if f.sealer, err = archive.NewWALSealer(f.info, testSigner); err != nil {
		t.Fatal(err)
	}
	return f
}

// open starts (or restarts) the vault on the fixture's directory.
func (f *fixture) open() {
	if f.v != nil {
		f.v.Close()
	}
	cfg := f.cfg
	cfg.Dir = f.dir
	v, err := New(cfg, testPeers, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	f.v = v
	f.t.Cleanup(func() { v.Close() })
}

// do sends a request as a peer and decodes the answer into out.
func (f *fixture) do(peer, method, target string, body []byte, out any) int {
	f.t.Helper()
	w := f.serve(peer, method, target, body)
	if out != nil {
		json.Unmarshal(w.Body.Bytes(), out)
	}
	return w.Code
}

// serve sends a request as a peer and returns the answer.
func (f *fixture) serve(peer, method, target string, body []byte) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, bytes.NewReader(body))
	r.RemoteAddr = peer
	w := httptest.NewRecorder()
	f.v.ServeHTTP(w, r)
	return w
}

func (f *fixture) record(peer string, seg uint64, off int, data []byte) (int, wire.Problem) {
	f.t.Helper()
	return sealedRecord(f.t, f, f.sealer, peer, seg, off, data)
}

func (f *fixture) createRepo(peer string) {
	f.t.Helper()
	b, _ := json.Marshal(f.info)
	if code := f.do(peer, "PUT", "/v1/repo", b, nil); code != 200 {
		f.t.Fatalf("create repository: got %d; want 200", code)
	}
}

func walBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i%251)
	}
	return b
}

func TestWALArrivals(t *testing.T) {
	f := newFixture(t)
	f.createRepo("box:1")
	if code := f.do("box:1", "POST", "/v1/wal/begin?tli=1&lsn=0", nil, nil); code != 200 {
		t.Fatalf("begin: got %d; want 200", code)
	}
	if code, p := f.record("box:1", 0, 0, walBytes(1000, 1)); code != 200 {
		t.Fatalf("first record: got %d %+v", code, p)
	}
	sealed, _ := f.sealer.Record(1, 0, 1000, walBytes(10, 2))
	for _, tc := range []struct {
		name  string
		query string
		body  []byte
		want  int
		code  string
	}{
		{"replayed", "tli=1&seg=0&offset=0&length=1000", mustRecord(t, f, 0, walBytes(1000, 1)), 409, "replayed"},
		{"overlapping", "tli=1&seg=0&offset=500&length=1000", mustRecord(t, f, 500, walBytes(1000, 1)), 409, "overlap"},
		{"gap", "tli=1&seg=0&offset=2000&length=10", mustRecord(t, f, 2000, walBytes(10, 1)), 409, "gap"},
		{"next segment too early", "tli=1&seg=1&offset=0&length=10", mustRecord(t, f, 0, walBytes(10, 1)), 409, "gap"},
		{"not sealed", "tli=1&seg=0&offset=1000&length=10", append([]byte{0, 0, 0, 10}, walBytes(10, 3)...), 422, "malformed"},
		{"length prefix wrong", "tli=1&seg=0&offset=1000&length=10", append([]byte{0, 0, 0, 1}, sealed[4:]...), 422, "malformed"},
		{"past the segment", fmt.Sprintf("tli=1&seg=0&offset=1000&length=%d", segSize), sealed, 422, "malformed"},
		{"too big for its length", "tli=1&seg=0&offset=1000&length=1", append(sealed, make([]byte, 20000)...), 422, "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p wire.Problem
			if code := f.do("box:1", "POST", "/v1/wal/record?"+tc.query, tc.body, &p); code != tc.want || p.Code != tc.code {
				t.Errorf("got %d %q (%s); want %d %q", code, p.Code, p.Error, tc.want, tc.code)
			}
		})
	}
	var pos wire.Position
	f.do("box:1", "GET", "/v1/wal", nil, &pos)
	if pos.Durable != 1000 || pos.Timeline != 1 {
		t.Errorf("got position %+v; want 1000 on timeline 1", pos)
	}
	// Another box's namespace is separate.
	var p wire.Problem
	if code := f.do("box2:1", "GET", "/v1/wal", nil, &p); code != 404 {
		t.Errorf("second box: got %d %+v; want 404 (no repository yet)", code, p)
	}
}

func mustRecord(t *testing.T, f *fixture, off int, data []byte) []byte {
	rec, err := f.sealer.Record(1, 0, off, data)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// A crash after data reached the partial file but before the index
// recorded it: the restarted vault cuts the unacknowledged bytes, takes
// the record again, and the repository reads back exactly the WAL sent.
func TestRestartCutsUnacknowledgedRecord(t *testing.T) {
	f := newFixture(t)
	f.createRepo("box:1")
	f.do("box:1", "POST", "/v1/wal/begin?tli=1&lsn=0", nil, nil)
	first, second := walBytes(3000, 1), walBytes(segSize-3000, 9)
	if code, p := f.record("box:1", 0, 0, first); code != 200 {
		t.Fatalf("got %d %+v", code, p)
	}
	repoDir := filepath.Join(f.dir, "boxes", "nBOX1", "repo")
	partial := filepath.Join(repoDir, archive.WALFile(segSize, 1, 0, archive.WALPartial))
	fh, err := os.OpenFile(partial, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.Write(mustRecord(t, f, 3000, second)[:500]) // torn, never acknowledged
	fh.Close()

	f.open()
	var pos wire.Position
	f.do("box:1", "GET", "/v1/wal", nil, &pos)
	if pos.Durable != 3000 {
		t.Fatalf("after restart: got durable %s; want 0/BB8", pos.Durable)
	}
	if code := f.do("box:1", "POST", "/v1/wal/begin?tli=1&lsn=0", nil, &pos); code != 200 || pos.Durable != 3000 {
		t.Fatalf("restream begin: got %d %+v", code, pos)
	}
	if code, p := f.record("box:1", 0, 3000, second); code != 200 {
		t.Fatalf("got %d %+v", code, p)
	}
	f.do("box:1", "GET", "/v1/wal", nil, &pos)
	if pos.Durable != segSize {
		t.Errorf("got durable %s; want the whole segment", pos.Durable)
	}
	repo, err := archive.OpenFirstUse(repoDir)
	if err != nil {
		t.Fatal(err)
	}
	sd, err := repo.ReadSegment(1, 0, f.ids)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sd.Data, append(first, second...)) || sd.Valid != segSize {
		t.Errorf("segment read back differs (%d valid bytes)", sd.Valid)
	}
}

// startBackup begins the upload of backup 20261122T101500Z, one file
// holding data, as box:1; it returns the backup's metadata.
func (f *fixture) startBackup(data []byte) []byte {
	f.t.Helper()
	return f.startBackupAs("box:1", data)
}

func (f *fixture) startBackupAs(peer string, data []byte) []byte {
	f.t.Helper()
	sum := sha256.Sum256(data)
	meta, _ := json.Marshal(archive.Backup{ID: "20261122T101500Z", SystemID: f.info.SystemID,
		Files: []archive.StoredFile{{Name: "base.tar.zst.age", Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}}})
	if code := f.do(peer, "PUT", "/v1/backups/20261122T101500Z/meta", meta, nil); code != 200 {
		f.t.Fatalf("meta: got %d", code)
	}
	return meta
}

func TestBackupUpload(t *testing.T) {
	f := newFixture(t)
	f.createRepo("box:1")
	data := walBytes(5000, 4)
	meta := f.startBackup(data)
	const base = "/v1/backups/20261122T101500Z"
	steps := []struct {
		name   string
		file   string
		offset int
		body   []byte
		want   int
		size   int64 // durable size afterwards
	}{
		{"first chunk", "base.tar.zst.age", 0, data[:2000], 200, 2000},
		{"offset behind", "base.tar.zst.age", 1000, data[1000:3000], 409, 2000},
		{"offset ahead", "base.tar.zst.age", 3000, data[3000:], 409, 2000},
		{"past the size", "base.tar.zst.age", 2000, append(data[2000:], 1), 422, 2000},
		{"unknown file", "other.age", 0, data, 422, 0},
		{"corrupt end is discarded", "base.tar.zst.age", 2000, walBytes(3000, 7), 422, 0},
		{"again from the start", "base.tar.zst.age", 0, data, 200, 5000},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			var p wire.BackupProgress
			code := f.do("box:1", "PUT", fmt.Sprintf("%s/files/%s?offset=%d", base, s.file, s.offset), s.body, nil)
			f.do("box:1", "GET", base, nil, &p)
			if code != s.want || p.Files[s.file] != s.size {
				t.Errorf("got %d with %d bytes held; want %d with %d", code, p.Files[s.file], s.want, s.size)
			}
		})
	}
	var p wire.Problem
	if code := f.do("box:1", "POST", base+"/commit", nil, &p); code != 422 || !strings.Contains(p.Error, "backup.json.age") {
		t.Errorf("commit without the sealed copy: got %d %q; want 422 naming backup.json.age", code, p.Error)
	}
	sealedMeta := append([]byte("age-encryption.org/v1\n"), 1, 2, 3)
	f.do("box:1", "PUT", base+"/files/backup.json.age?offset=0", sealedMeta, nil)
	var bp wire.BackupProgress
	if code := f.do("box:1", "POST", base+"/commit", nil, &bp); code != 200 || !bp.Complete {
		t.Fatalf("commit: got %d %+v", code, bp)
	}
	repo, _ := archive.OpenFirstUse(filepath.Join(f.dir, "boxes", "nBOX1", "repo"))
	if done, _, _ := repo.Backups(); len(done) != 1 {
		t.Errorf("the repository lists %d backups; want 1", len(done))
	}
	if code := f.do("box:1", "PUT", base+"/meta", meta, &p); code != 409 || p.Code != "exists" {
		t.Errorf("replayed backup: got %d %q; want 409 exists", code, p.Code)
	}
}

func TestAuthorization(t *testing.T) {
	f := newFixture(t)
	f.createRepo("box:1")
	info, _ := json.Marshal(f.info)
	for _, tc := range []struct {
		peer, method, target string
		body                 []byte
		want                 int
	}{
		{"support:1", "GET", "/v1/status", nil, 200},
		{"support:1", "GET", "/v1/files?box=nBOX1", nil, 403},
		{"support:1", "PUT", "/v1/repo", info, 403},
		{"laptop:1", "GET", "/v1/status", nil, 403},
		{"printer:1", "GET", "/v1/files?box=nBOX1", nil, 403},
		{"unknown:1", "GET", "/v1/status", nil, 403},
		{"box2:1", "GET", "/v1/files?box=nBOX1", nil, 403},
		{"restore:1", "GET", "/v1/files?box=nBOX1", nil, 200},
		{"restore:1", "GET", "/v1/files/clinicbox-repo.json?box=nBOX1", nil, 200},
		{"restore:1", "GET", "/v1/files/../audit.jsonl?box=nBOX1", nil, 307}, // cleaned away by the mux, never served
		{"restore:1", "PUT", "/v1/repo", info, 403},
		{"box:1", "GET", "/v1/files", nil, 200},
	} {
		t.Run(tc.peer+" "+tc.method+" "+tc.target, func(t *testing.T) {
			if got := f.do(tc.peer, tc.method, tc.target, tc.body, nil); got != tc.want {
				t.Errorf("got %d; want %d", got, tc.want)
			}
		})
	}
	raw, _ := os.ReadFile(filepath.Join(f.dir, "audit.jsonl"))
	var refused []string
	for _, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		var e AuditEntry
		json.Unmarshal(line, &e)
		if e.Status == 403 {
			refused = append(refused, e.Node+"@"+e.Addr)
		}
	}
	if got := strings.Join(refused, " "); got != "support@support:1 support@support:1 laptop@laptop:1 printer@printer:1 @unknown:1 box2@box2:1 restore@restore:1" {
		t.Errorf("audited refusals: got %q", got)
	}
}

func TestRetentionKeeps(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	var as []*Arrival
	for weeks := 8; weeks >= 0; weeks-- {
		at := now.Add(-time.Duration(weeks)*7*24*time.Hour - time.Hour)
		as = append(as, &Arrival{ID: archive.NewID(at), Time: at, Verified: &Span{Timeline: 1, EndTimeline: 1}})
	}
	keep := Retention{}.withDefaults().keep(as, now)
	var kept []string
	for _, a := range as {
		if why, ok := keep[a.ID]; ok {
			kept = append(kept, a.ID[:8]+"="+strings.Fields(why)[0])
		}
	}
	want := "20261025=arrived 20261101=arrived 20261108=arrived 20261115=starts 20261122=the"
	if got := strings.Join(kept, " "); got != want {
		t.Errorf("kept %s; want %s", got, want)
	}
}
