package vault

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
)

// storeWAL streams segments 0 to 3 whole and 1000 bytes of segment 4.
func (f *fixture) storeWAL() {
	f.t.Helper()
	if code := f.do("box:1", "POST", "/v1/wal/begin?tli=1&lsn=0", nil, nil); code != 200 {
		f.t.Fatalf("begin: got %d; want 200", code)
	}
	for seg := range 4 {
		if code, p := f.record("box:1", uint64(seg), 0, walBytes(segSize, byte(seg))); code != 200 {
			f.t.Fatalf("segment %d: got %d %s", seg, code, p.Error)
		}
	}
	if code, p := f.record("box:1", 4, 0, walBytes(1000, 9)); code != 200 {
		f.t.Fatalf("segment 4: got %d %s", code, p.Error)
	}
}

// commitClaiming uploads and commits a backup whose backup.json claims the
// given WAL span.
func (f *fixture) commitClaiming(id string, tli uint32, start archive.LSN, endTLI uint32, end archive.LSN) {
	f.t.Helper()
	span := Span{Timeline: tli, Start: start, EndTimeline: endTLI, End: end}
	f.commitSigned(id, span, backupSig(testSigner, id, f.info.SystemID, span))
}

// commitSigned uploads and commits a backup whose backup.json claims span,
// with sig as its backup.sig (none when nil), written into the upload
// before the commit.
func (f *fixture) commitSigned(id string, span Span, sig []byte) {
	f.t.Helper()
	tli, start, endTLI, end := span.Timeline, span.Start, span.EndTimeline, span.End
	data := walBytes(3000, 5)
	sum := sha256.Sum256(data)
	meta, _ := json.Marshal(archive.Backup{ID: id, SystemID: f.info.SystemID, Timeline: tli, StartLSN: start, EndTimeline: endTLI, EndLSN: end,
		End:   time.Now().Add(-30 * 24 * time.Hour), // claimed; the vault ages backups by their arrival
		Files: []archive.StoredFile{{Name: "base.tar.zst.age", Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}}})
	f.stage(id, meta, "base.tar.zst.age", data)
	if sig != nil {
		staged := filepath.Join(f.dir, "boxes", "nBOX1", "repo", "backups", ".incomplete-"+id, "backup.sig")
		if err := os.WriteFile(staged, sig, 0o644); err != nil {
			f.t.Fatal(err)
		}
	}
	var p wire.Problem
	if code := f.do("box:1", "POST", "/v1/backups/"+id+"/commit", nil, &p); code != 200 {
		f.t.Fatalf("commit %s: got %d %s; want 200", id, code, p.Error)
	}
}

// stage uploads a backup's metadata, its one file and the sealed copy of
// its metadata, short of the commit.
func (f *fixture) stage(id string, meta []byte, name string, data []byte) {
	f.t.Helper()
	base := "/v1/backups/" + id
	for _, step := range []struct {
		method, target string
		body           []byte
	}{
		{"PUT", base + "/meta", meta},
		{"PUT", base + "/files/" + name + "?offset=0", data},
		{"PUT", base + "/files/backup.json.age?offset=0", sealedStub},
	} {
		var p wire.Problem
		if code := f.do("box:1", step.method, step.target, step.body, &p); code != 200 {
			f.t.Fatalf("%s %s: got %d %s; want 200", step.method, step.target, code, p.Error)
		}
	}
}

// segments lists the WAL segments the vault holds, by number.
func (f *fixture) segments() []uint64 {
	f.t.Helper()
	repo, err := archive.Open(filepath.Join(f.dir, "boxes", "nBOX1", "repo"))
	if err != nil {
		f.t.Fatal(err)
	}
	tls, err := repo.Timelines()
	if err != nil {
		f.t.Fatal(err)
	}
	var out []uint64
	for _, tl := range tls {
		for _, s := range tl.Segments {
			out = append(out, s.SegNo)
		}
	}
	return out
}

// A backup's metadata is the box's word. One forged backup claiming a
// start past everything once made retention delete all of the box's WAL:
// retention now acts only on the span the vault confirmed from the WAL it
// holds, and a backup it could not confirm deletes nothing.
func TestForgedBackupDeletesNoWAL(t *testing.T) {
	const far = archive.LSN(0x10_0000_0000)
	for _, tc := range []struct {
		name       string
		tli        uint32
		start, end archive.LSN
		endTLI     uint32
		want       int // segments left
	}{
		{"start past the stored WAL", 1, far, far + 100, 1, 5},
		{"on a timeline the vault never saw", 7, 0, 100, 7, 5},
		{"end past the stored WAL", 1, 2*segSize + 10, far, 1, 5},
		{"ends before it starts", 1, 3 * segSize, 2 * segSize, 1, 5},
		{"consistent with the stored WAL", 1, 2*segSize + 10, 3 * segSize, 1, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.createRepo("box:1")
			f.storeWAL()
			f.commitClaiming("20261122T101500Z", tc.tli, tc.start, tc.endTLI, tc.end)
			if _, err := f.v.Prune(time.Now().Add(40 * 24 * time.Hour)); err != nil {
				t.Fatal(err)
			}
			if got := f.segments(); len(got) != tc.want {
				t.Errorf("segments left: got %v; want %d of 5", got, tc.want)
			}
		})
	}
}
