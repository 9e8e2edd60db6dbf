package vault

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"github.com/clinicbox/clinicbox/appliance/status"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
)

// pattern is an endless body that costs no memory.
type pattern struct{ n byte }

func (p *pattern) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = p.n
		p.n += 7
	}
	return len(b), nil
}

// A large chunk is streamed to disk: a 512 MiB PUT once allocated 1.2 GiB.
func TestUploadStreamsToDisk(t *testing.T) {
	f := newFixture(t)
	f.createRepo("box:1")
	const size = 64 << 20
	h := sha256.New()
	io.CopyN(h, &pattern{}, size)
	meta, _ := json.Marshal(archive.Backup{ID: "20261122T101500Z", SystemID: f.info.SystemID,
		Files: []archive.StoredFile{{Name: "base.tar.zst.age", Size: size, SHA256: hex.EncodeToString(h.Sum(nil))}}})
	if code := f.do("box:1", "PUT", "/v1/backups/20261122T101500Z/meta", meta, nil); code != 200 {
		t.Fatalf("meta: got %d; want 200", code)
	}
	r := httptest.NewRequest("PUT", "/v1/backups/20261122T101500Z/files/base.tar.zst.age?offset=0", io.LimitReader(&pattern{}, size))
	r.RemoteAddr = "box:1"
	w := httptest.NewRecorder()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f.v.ServeHTTP(w, r)
	runtime.ReadMemStats(&after)
	if w.Code != 200 {
		t.Fatalf("upload: got %d %s; want 200", w.Code, w.Body)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("a %d MiB chunk allocated %.1f MiB", size>>20, float64(alloc)/(1<<20))
	if alloc > 8<<20 {
		t.Errorf("a %d MiB chunk allocated %d MiB; want at most 8", size>>20, alloc>>20)
	}
}

func TestSegmentSizeRange(t *testing.T) {
	for _, tc := range []struct {
		size uint64
		want int
	}{
		{512 << 10, 422},
		{1 << 20, 200},
		{3 << 20, 422},
		{1 << 30, 200},
		{2 << 30, 422},
		{1 << 40, 422},
	} {
		t.Run(status.Bytes(int64(tc.size)), func(t *testing.T) {
			f := newFixture(t)
			info := f.info
			info.SegmentSize = tc.size
			b, _ := json.Marshal(info)
			if code := f.do("box:1", "PUT", "/v1/repo", b, nil); code != tc.want {
				t.Errorf("got %d; want %d", code, tc.want)
			}
		})
	}
}

// An upload nothing has written to for longer than the abandon age is
// removed by retention; a younger one stays.
func TestAbandonedUploadIsRemoved(t *testing.T) {
	f := newFixture(t)
	f.createRepo("box:1")
	data := walBytes(5000, 4)
	f.startBackup(data)
	if code := f.do("box:1", "PUT", "/v1/backups/20261122T101500Z/files/base.tar.zst.age?offset=0", data[:2000], nil); code != 200 {
		t.Fatalf("chunk: got %d; want 200", code)
	}
	staging := filepath.Join(f.dir, "boxes", "nBOX1", "repo", "backups", ".incomplete-20261122T101500Z")
	now := time.Now()
	for _, tc := range []struct {
		after time.Duration
		kept  bool
	}{
		{47 * time.Hour, true},
		{49 * time.Hour, false},
	} {
		rs, err := f.v.Prune(now.Add(tc.after))
		if err != nil {
			t.Fatal(err)
		}
		_, err = os.Stat(staging)
		if kept := err == nil; kept != tc.kept {
			t.Errorf("after %s: upload kept %v (removals %v); want %v", tc.after, kept, rs, tc.kept)
		}
	}
}

// A namespace stops at its quota: the box hears why and what to do, and
// nothing it stored before is lost.
func TestQuota(t *testing.T) {
	f := newFixture(t)
	f.cfg.Limits.Quota = 3 << 20
	f.open()
	f.createRepo("box:1")
	f.do("box:1", "POST", "/v1/wal/begin?tli=1&lsn=0", nil, nil)
	noise := make([]byte, 3*segSize)
	rand.Read(noise) // sealed WAL does not compress
	const full = "the vault is full for this practice: ask the vault's operator to raise the quota"
	var stopped int
	for seg := range 3 {
		code, p := f.record("box:1", uint64(seg), 0, noise[seg*segSize:(seg+1)*segSize])
		if code != 200 {
			if code != 507 || p.Code != "quota" || !strings.Contains(p.Error, full) {
				t.Fatalf("segment %d: got %d %q %q; want 507 quota saying %q", seg, code, p.Code, p.Error, full)
			}
			stopped = seg
			break
		}
	}
	if stopped == 0 {
		t.Fatal("3 MiB of WAL fit in a quota of 3 MiB with the repository's own files")
	}
	var pos wire.Position
	if f.do("box:1", "GET", "/v1/wal", nil, &pos); pos.Durable != archive.LSN(stopped*segSize) {
		t.Errorf("durable WAL after the refusal: got %s; want %s", pos.Durable, archive.LSN(stopped*segSize))
	}
	meta, _ := json.Marshal(archive.Backup{ID: "20261122T101500Z", SystemID: f.info.SystemID,
		Files: []archive.StoredFile{{Name: "base.tar.zst.age", Size: 5 << 20, SHA256: strings.Repeat("0", 64)}}})
	var p wire.Problem
	if code := f.do("box:1", "PUT", "/v1/backups/20261122T101500Z/meta", meta, &p); code != 507 || !strings.Contains(p.Error, full) {
		t.Errorf("a backup larger than the room left: got %d %q; want 507 saying %q", code, p.Error, full)
	}
}
