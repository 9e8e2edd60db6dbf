package archive

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"filippo.io/age"
	"github.com/clinicbox/clinicbox/appliance/signer"
)

func testRepo(t *testing.T) (*Repo, []age.Identity) { return sizedRepo(t, 1<<16) }

// boxKey signs the test repositories; forger is anyone else's key.
var (
	boxKey = signer.FromSeed(bytes.Repeat([]byte{1}, 32))
	forger = signer.FromSeed(bytes.Repeat([]byte{2}, 32))
)

// sizedRepo is a repository of WAL segments of the given size.
func sizedRepo(t *testing.T, segSize uint64) (*Repo, []age.Identity) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	r, err := Create(filepath.Join(t.TempDir(), "repo"), Info{SystemID: "7000000000000000001", SegmentSize: segSize, ServerVersion: 150000, Recipients: []string{id.Recipient().String()}}, boxKey)
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
	if end, err := w.Flush(); err != nil || end != at+LSN(len(seg)) {
		t.Fatalf("flush = %s, %v; want %s", end, err, at+LSN(len(seg)))
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
	if _, err := w.Flush(); err != nil {
		t.Fatal(err)
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

// A failure to store WAL (here the timeline's directory vanishes) comes
// back from Write or Flush, and a new session starts clean.
func TestWALWriterFailsThenRecovers(t *testing.T) {
	r, ids := testRepo(t)
	seg := walBytes(int(r.Info.SegmentSize), 11)
	w, err := r.WAL()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	start := LSN(4 * r.Info.SegmentSize)
	if err := w.Begin(1, start); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(r.walDir(1)); err != nil {
		t.Fatal(err)
	}
	werr := w.Write(start, seg)
	_, ferr := w.Flush()
	if werr == nil && ferr == nil {
		t.Fatal("got no error storing WAL into a removed directory; want one")
	}
	tli, at, _, err := w.Resume()
	if err != nil {
		t.Fatal(err)
	}
	if tli != 0 || at != 0 {
		t.Fatalf("resume after the failure = %d %s; want nothing stored", tli, at)
	}
	if err := w.Begin(1, start); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(start, seg); err != nil {
		t.Fatalf("write in a new session: %v", err)
	}
	if end, err := w.Flush(); err != nil || end != start+LSN(len(seg)) {
		t.Fatalf("flush in a new session = %s, %v; want %s", end, err, start+LSN(len(seg)))
	}
	sd, err := r.ReadSegment(1, 4, ids)
	if err != nil || sd.Partial || !bytes.Equal(sd.Data, seg) {
		t.Fatalf("segment after recovery: %v (partial %v); want the complete segment", err, sd != nil && sd.Partial)
	}
}

// A complete segment a crashed writer left under its temporary name is
// removed when the next session begins; closing a writer removes its own.
func TestWALWriterTemporaryFiles(t *testing.T) {
	r, _ := testRepo(t)
	if err := mkdirAll(r.walDir(1)); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(r.walDir(1), ".tmp-000000010000000000000002.zst.age-123")
	other := filepath.Join(r.walDir(1), ".tmp-vault-upload")
	for _, p := range []string{stale, other} {
		if err := os.WriteFile(p, []byte("x"), filePerm); err != nil {
			t.Fatal(err)
		}
	}
	w, err := r.WAL()
	if err != nil {
		t.Fatal(err)
	}
	start := LSN(2 * r.Info.SegmentSize)
	if err := w.Begin(1, start); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temporary segment survived Begin (stat: %v)", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("Begin removed a temporary file that is not a segment's: %v", err)
	}
	if err := w.Write(start, walBytes(1000, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if tmps, _ := filepath.Glob(filepath.Join(r.walDir(1), ".tmp-*.zst.age-*")); len(tmps) != 1 {
		t.Errorf("got temporary segments %v while writing; want the one being assembled", tmps)
	}
	w.Close()
	if tmps, _ := filepath.Glob(filepath.Join(r.walDir(1), ".tmp-*.zst.age-*")); len(tmps) != 0 {
		t.Errorf("got temporary segments %v after Close; want none", tmps)
	}
}
