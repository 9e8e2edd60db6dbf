package vault

import (
	"bytes"
	"fmt"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
	"io"
	"os"
	"path/filepath"
	"testing"

	"filippo.io/age"

	"github.com/clinicbox/clinicbox/appliance/archive"
)

// boxRecords streams data into a repository on the box's drive as
// archive.WALWriter does, flushing at each cut, with the stream catching up
// (behind) for the records marked so; it returns the records the box's
// partial file gained at each flush, as stored.
func boxRecords(t *testing.T, f *fixture, data []byte, cuts []int, behind []bool) [][]byte {
	t.Helper()
	r, err := archive.Create(filepath.Join(t.TempDir(), "drive"), f.info, testSigner)
	if err != nil {
		t.Fatal(err)
	}
	w, err := r.WAL()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Begin(1, 0); err != nil {
		t.Fatal(err)
	}
	partial := filepath.Join(r.Dir, archive.WALFile(segSize, 1, 0, archive.WALPartial))
	var recs [][]byte
	from, seen := 0, 0
	for i, to := range cuts {
		w.SetBehind(behind[i])
		if err := w.Write(archive.LSN(from), data[from:to]); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		all, err := os.ReadFile(partial)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, all[seen:])
		from, seen = to, len(all)
	}
	return recs
}

// firstCodec decrypts a record and returns the codec of its first frame.
func firstCodec(t *testing.T, rec []byte, ids []age.Identity) archive.Codec {
	t.Helper()
	o, err := age.Decrypt(bytes.NewReader(rec[4:]), ids...)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(o)
	if err != nil || len(plain) < 13 {
		t.Fatalf("record plaintext: %d bytes, %v", len(plain), err)
	}
	return archive.Codec(plain[12]) // after "CBR2", offset and length
}

// The vault stores the box's records as they are, whatever codec their
// frames use: records compressed with S2 while the box caught up and with
// zstd after it are taken, and the vault's repository reads back the WAL
// sent through ReadSegment and FetchWAL (a restore from the vault).
func TestVaultStoresMixedCodecWAL(t *testing.T) {
	f := newFixture(t)
	f.createRepo("box:1")
	if code := f.do("box:1", "POST", "/v1/wal/begin?tli=1&lsn=0", nil, nil); code != 200 {
		t.Fatalf("begin: got %d; want 200", code)
	}
	data := walBytes(segSize-4096, 5)
	cuts := []int{300 << 10, 700 << 10, len(data)}
	behind := []bool{true, false, true}
	recs := boxRecords(t, f, data, cuts, behind)
	from := 0
	for i, rec := range recs {
		want := archive.CodecZstd
		if behind[i] {
			want = archive.CodecS2
		}
		if c := firstCodec(t, rec, f.ids); c != want {
			t.Errorf("record %d: first frame codec %d; want %d", i, c, want)
		}
		var p wire.Problem
		q := fmt.Sprintf("/v1/wal/record?tli=1&seg=0&offset=%d&length=%d", from, cuts[i]-from)
		if code := f.do("box:1", "POST", q, rec, &p); code != 200 {
			t.Fatalf("record %d: got %d %+v; want 200", i, code, p)
		}
		from = cuts[i]
	}
	repo, err := archive.OpenFirstUse(filepath.Join(f.dir, "boxes", "nBOX1", "repo"))
	if err != nil {
		t.Fatal(err)
	}
	sd, err := repo.ReadSegment(1, 0, f.ids)
	if err != nil || sd.Valid != len(data) || !bytes.Equal(sd.Data[:sd.Valid], data) {
		t.Fatalf("ReadSegment: err %v; want the %d bytes sent", err, len(data))
	}
	dest := filepath.Join(t.TempDir(), "000000010000000000000000")
	if err := repo.FetchWAL(filepath.Base(dest), dest, f.ids); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); len(got) != segSize || !bytes.Equal(got[:len(data)], data) {
		t.Errorf("FetchWAL: %d bytes, identical %v; want %d, the WAL sent then zeros", len(got), bytes.Equal(got[:min(len(got), len(data))], data), segSize)
	}
}
