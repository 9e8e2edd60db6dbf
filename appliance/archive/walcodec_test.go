package archive

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"filippo.io/age"
)

// noisySegment is walSegment with a stretch of random bytes (a
// full-page image of encrypted or compressed data) that no codec makes
// smaller; the page headers stay valid, so Verify's page checks pass.
func noisySegment(r *Repo, segNo uint64, seed uint64) []byte {
	d := walSegment(r, 1, segNo)
	rng := rand.New(rand.NewPCG(seed, 2))
	noise := len(d)/2 + chunkSize/2
	for i := noise; i < noise+chunkSize+chunkSize/2; i++ {
		if i%walPageSize >= 40 { // past the long page header
			d[i] = byte(rng.Uint32())
		}
	}
	return d
}

// segmentCodecs lists the codec of every frame of a complete segment file.
func segmentCodecs(t *testing.T, r *Repo, segNo uint64, ids []age.Identity) []Codec {
	t.Helper()
	p, ok := bytes.CutPrefix(segmentPlain(t, r, segNo, ids), []byte(magicWAL))
	if !ok {
		t.Fatalf("segment %d: no format 2 magic", segNo)
	}
	var codecs []Codec
	for len(p) >= frameHdr && Codec(p[0]) != codecSeal {
		codecs = append(codecs, Codec(p[0]))
		p = p[frameHdr+int(binary.BigEndian.Uint32(p[5:])):]
	}
	return codecs
}

// writeSegments streams whole segments from segment first, flushing in the
// middle of each (so partial records carry the same codecs), with behind
// set for the first half of the first segment only.
func writeSegments(t *testing.T, r *Repo, first uint64, segs [][]byte) {
	t.Helper()
	w, err := r.WAL()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	start := LSN(first * r.Info.SegmentSize)
	if err := w.Begin(1, start); err != nil {
		t.Fatal(err)
	}
	at := start
	for i, seg := range segs {
		half := len(seg) / 2
		for j, part := range [][]byte{seg[:half], seg[half:]} {
			w.SetBehind(i == 0 && j == 0)
			if err := w.Write(at, part); err != nil {
				t.Fatal(err)
			}
			at += LSN(len(part))
			if j == 0 {
				if _, err := w.Flush(); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if end, err := w.Flush(); err != nil || end != at {
		t.Fatalf("flush = %s, %v; want %s", end, err, at)
	}
}

// WAL received while catching up is stored in S2 frames, and in zstd ones
// once caught up; data no codec shrinks is stored raw. Every reader takes
// every codec: ReadSegment (the restore's WAL scan, the drill), FetchWAL
// (wal-fetch, PostgreSQL's restore_command), and Verify.
func TestWALCodecFollowsBacklog(t *testing.T) {
	r, ids := sizedRepo(t, 4<<20) // eight frames per segment
	const first = 6
	segs := [][]byte{noisySegment(r, first, 1), noisySegment(r, first+1, 2)}
	writeSegments(t, r, first, segs)

	for i, want := range [][]Codec{{CodecS2, CodecZstd, CodecRaw}, {CodecZstd, CodecRaw}} {
		got := segmentCodecs(t, r, first+uint64(i), ids)
		if got[0] != want[0] || !containsAll(got, want) || i == 1 && slices.Contains(got, CodecS2) {
			t.Errorf("segment %d frame codecs %v; want the first %v, and all of %v", first+i, got, want[0], want)
		}
	}
	for i, seg := range segs {
		segNo := first + uint64(i)
		sd, err := r.ReadSegment(1, segNo, ids)
		if err != nil || sd.Partial || !bytes.Equal(sd.Data, seg) {
			t.Fatalf("ReadSegment(%d): err %v, identical %v; want the segment written", segNo, err, err == nil && bytes.Equal(sd.Data, seg))
		}
		dest := filepath.Join(t.TempDir(), "seg")
		if err := r.FetchWAL(segName(1, segNo, r.Info.SegmentSize), dest, ids); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(dest); !bytes.Equal(got, seg) {
			t.Errorf("FetchWAL(%d) differs from the segment written", segNo)
		}
	}
	rep, err := r.Verify(context.Background(), VerifyOptions{Identities: ids})
	if err != nil || !rep.OK() || rep.Segments != len(segs) {
		t.Errorf("Verify: %v, problems %v, %d segments; want none, %d", err, rep.Problems, rep.Segments, len(segs))
	}
}

func containsAll(got, want []Codec) bool {
	for _, c := range want {
		if !slices.Contains(got, c) {
			return false
		}
	}
	return true
}

// A partial segment whose records were written while catching up (S2) and
// after (zstd) reads back whole.
func TestPartialSegmentMixedCodecs(t *testing.T) {
	r, ids := sizedRepo(t, 4<<20)
	seg := noisySegment(r, 2, 3)
	w, err := r.WAL()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	start := LSN(2 * r.Info.SegmentSize)
	if err := w.Begin(1, start); err != nil {
		t.Fatal(err)
	}
	cuts := []int{0, 700 << 10, 1900 << 10, 3 << 20}
	for i := 1; i < len(cuts); i++ {
		w.SetBehind(i%2 == 1)
		if err := w.Write(start+LSN(cuts[i-1]), seg[cuts[i-1]:cuts[i]]); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	sd, err := r.ReadSegment(1, 2, ids)
	end := cuts[len(cuts)-1]
	if err != nil || !sd.Partial || sd.Valid != end || !bytes.Equal(sd.Data[:end], seg[:end]) {
		t.Fatalf("partial segment: err %v; want %d valid bytes identical to those written", err, end)
	}
}

// The writer stores frames raw while catching up only when every chunk
// buffer waits for the compressors: the receiver would otherwise stall.
func TestCodecFallsBackToRawWhenCompressionLags(t *testing.T) {
	r, _ := testRepo(t)
	w := newWALWorker(r)
	defer w.stop()
	if c := w.codec(true); c != CodecZstd {
		t.Errorf("caught up: codec %d; want zstd (%d)", c, CodecZstd)
	}
	w.behind.Store(true)
	if c := w.codec(true); c != CodecS2 {
		t.Errorf("behind, buffers free: codec %d; want S2 (%d)", c, CodecS2)
	}
	var held []*[]byte
	for range chunkBufs {
		held = append(held, w.buffer())
	}
	if c := w.codec(true); c != CodecRaw {
		t.Errorf("behind, every buffer waiting: codec %d; want raw (%d)", c, CodecRaw)
	}
	if c := w.codec(false); c != CodecS2 {
		t.Errorf("behind, every buffer waiting, no more raw frames allowed: codec %d; want S2 (%d)", c, CodecS2)
	}
	w.release(held[0])
	if c := w.codec(true); c != CodecS2 {
		t.Errorf("behind, a buffer free again: codec %d; want S2 (%d)", c, CodecS2)
	}
	for _, b := range held[1:] {
		w.release(b)
	}
}

// No frame is larger than its data and header: data a codec cannot shrink
// is stored raw (the vault bounds a record's size by its WAL bytes).
func TestFrameNeverLargerThanData(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	data := make([]byte, chunkSize)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	enc := newFrameEncoder()
	for _, c := range []Codec{CodecZstd, CodecS2, CodecRaw} {
		f, _ := enc.encode(nil, c, data)
		if len(f) != frameHdr+len(data) || Codec(f[0]) != CodecRaw {
			t.Errorf("codec %d on random data: frame of %d bytes with codec %d; want %d bytes, raw", c, len(f), f[0], frameHdr+len(data))
		}
	}
}
