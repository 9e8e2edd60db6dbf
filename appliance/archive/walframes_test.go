package archive

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"filippo.io/age"
)

// walBytes makes n bytes that compress somewhat, like WAL.
func walBytes(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := 0; i < n; i += 64 {
		if rng.IntN(3) == 0 {
			for j := i; j < min(i+64, n); j++ {
				b[j] = byte(rng.Uint32())
			}
		} else {
			binary.BigEndian.PutUint64(b[i:], uint64(i))
		}
	}
	return b
}

// WAL written in messages of many sizes, flushed at arbitrary points, reads
// back identical: as a partial segment after each flush, and as complete
// segments built from the frames of those flushes.
func TestWALFramesReadBackIdentical(t *testing.T) {
	r, ids := sizedRepo(t, 2<<20) // several frames per segment
	seg := int(r.Info.SegmentSize)
	data := walBytes(2*seg+seg/3, 7)
	w, err := r.WAL()
	if err != nil {
		t.Fatal(err)
	}
	start := LSN(5 * r.Info.SegmentSize)
	if err := w.Begin(1, start); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for off := 0; off < len(data); {
		n := min(len(data)-off, 1+rng.IntN(200<<10))
		if err := w.Write(start+LSN(off), data[off:off+n]); err != nil {
			t.Fatal(err)
		}
		off += n
		if rng.IntN(4) != 0 {
			continue
		}
		end, err := w.Flush()
		if err != nil || end != start+LSN(off) {
			t.Fatalf("flush = %s, %v; want %s", end, err, start+LSN(off))
		}
		segNo, in := uint64(start)/uint64(seg)+uint64(off/seg), off%seg
		if in == 0 {
			continue
		}
		sd, err := r.ReadSegment(1, segNo, ids)
		if err != nil {
			t.Fatalf("partial segment after %d bytes: %v", off, err)
		}
		if !sd.Partial || sd.Valid != in || !bytes.Equal(sd.Data[:in], data[off-in:off]) {
			t.Fatalf("partial segment after %d bytes: partial %v valid %d, same bytes %v; want partial, %d valid, same",
				off, sd.Partial, sd.Valid, bytes.Equal(sd.Data[:sd.Valid], data[off-in:off-in+sd.Valid]), in)
		}
	}
	if _, err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		segNo := uint64(start)/uint64(seg) + uint64(i)
		sd, err := r.ReadSegment(1, segNo, ids)
		if err != nil {
			t.Fatal(err)
		}
		if sd.Partial || sd.Valid != seg || !bytes.Equal(sd.Data, data[i*seg:(i+1)*seg]) {
			t.Errorf("segment %d: partial %v, valid %d, identical %v; want complete, %d, identical", segNo, sd.Partial, sd.Valid, bytes.Equal(sd.Data, data[i*seg:(i+1)*seg]), seg)
		}
		if _, err := os.Stat(r.segPath(1, segNo, partialSuffix)); !os.IsNotExist(err) {
			t.Errorf("segment %d: partial file left next to the complete one (stat: %v)", segNo, err)
		}
		if frames := countFrames(t, r, segNo, ids); frames < 2 {
			t.Errorf("segment %d holds %d zstd frames; want at least 2 (one per MB)", segNo, frames)
		}
	}
	w.Close()
	if tmps, _ := filepath.Glob(filepath.Join(r.walDir(1), ".tmp-*")); len(tmps) > 0 {
		t.Errorf("temporary files left: %v", tmps)
	}
}

// countFrames decrypts a complete segment and counts the zstd frames in it.
func countFrames(t *testing.T, r *Repo, segNo uint64, ids []age.Identity) int {
	return bytes.Count(segmentPlain(t, r, segNo, ids), []byte{0x28, 0xb5, 0x2f, 0xfd})
}

// segmentPlain decrypts a complete segment file on timeline 1.
func segmentPlain(t *testing.T, r *Repo, segNo uint64, ids []age.Identity) []byte {
	t.Helper()
	f, err := os.Open(r.segPath(1, segNo, segSuffix))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	o, err := open(f, ids, false)
	if err != nil {
		t.Fatal(err)
	}
	var plain bytes.Buffer
	if _, err := plain.ReadFrom(o); err != nil {
		t.Fatal(err)
	}
	return plain.Bytes()
}
