package archive

import (
	"os"
	"path/filepath"
	"testing"

	"filippo.io/age"
)

func testRepo(t *testing.T) (*Repo, []age.Identity) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	r, err := Create(filepath.Join(t.TempDir(), "repo"), Info{SystemID: "7000000000000000001", SegmentSize: 1 << 16, ServerVersion: 150000, Recipients: []string{id.Recipient().String()}})
	if err != nil {
		t.Fatal(err)
	}
	return r, []age.Identity{id}
}

// A session that stopped inside a segment leaves a partial file; the next
// session restreams the segment from its start and may complete it without
// a flush in between. The stale partial file must not survive next to the
// complete segment, where it would shadow nothing and be checked by nobody.
func TestCompletedSegmentReplacesEarlierSessionsPartial(t *testing.T) {
	r, ids := testRepo(t)
	seg := make([]byte, r.Info.SegmentSize)
	for i := range seg {
		seg[i] = byte(i * 7)
	}
	w, err := r.WAL()
	if err != nil {
		t.Fatal(err)
	}
	start := LSN(3 * r.Info.SegmentSize)
	if err := w.Begin(1, start); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(start, seg[:1000]); err != nil {
		t.Fatal(err)
	}
	if end, err := w.Flush(); err != nil || end != start+1000 {
		t.Fatalf("flush = %s, %v; want %s", end, err, start+1000)
	}
	w.Close()
	partial := r.segPath(1, 3, partialSuffix)
	if _, err := os.Stat(partial); err != nil {
		t.Fatalf("first session left no partial file: %v", err)
	}

	w, err = r.WAL()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	tli, at, ok, err := w.Resume()
	if err != nil || !ok || tli != 1 || at != start {
		t.Fatalf("resume = %d %s %v %v; want 1 %s", tli, at, ok, err, start)
	}
	if err := w.Begin(tli, at); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(at, seg); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(partial); !os.IsNotExist(err) {
		t.Fatalf("stale partial file survived the complete segment (stat: %v)", err)
	}
	sd, err := r.ReadSegment(1, 3, ids)
	if err != nil {
		t.Fatal(err)
	}
	if sd.Partial || sd.Valid != len(seg) {
		t.Fatalf("segment read back partial=%v valid=%d; want complete %d", sd.Partial, sd.Valid, len(seg))
	}
}

// Deleted segments and backups leave the catalog at once.
func TestDeleteSegments(t *testing.T) {
	r, _ := testRepo(t)
	w, err := r.WAL()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	seg := make([]byte, r.Info.SegmentSize)
	start := LSN(2 * r.Info.SegmentSize)
	if err := w.Begin(1, start); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := w.Write(start+LSN(i)*LSN(len(seg)), seg); err != nil {
			t.Fatal(err)
		}
	}
	tls, err := r.Timelines()
	if err != nil || len(tls) != 1 || len(tls[0].Segments) != 3 {
		t.Fatalf("got %v, %v; want one timeline of 3 segments", tls, err)
	}
	if err := r.DeleteSegments(tls[0].Segments[:2]); err != nil {
		t.Fatal(err)
	}
	tls, _ = r.Timelines()
	if got := tls[0].Segments; len(got) != 1 || got[0].SegNo != 4 {
		t.Fatalf("after deleting two: got %+v; want only segment 4", got)
	}
	if err := r.DeleteBackup("../x"); err == nil {
		t.Errorf("DeleteBackup accepted a path")
	}
}
