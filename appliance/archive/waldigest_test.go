package archive

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"os"
	"testing"
)

// sealDecodedDigest seals data as a WAL file was written before 2026-12:
// the magic given, then zstd frames of chunkSize, then a seal whose digest
// covers each frame's decoded bytes. prefix goes between the magic and the
// frames (a record's offset and length).
func sealDecodedDigest(t *testing.T, r *Repo, magic string, prefix []byte, data []byte, st walStatement) []byte {
	t.Helper()
	enc := newFrameEncoder()
	p := append([]byte(magic), prefix...)
	var d digester
	for off := 0; off < len(data); off += chunkSize {
		chunk := data[off:min(off+chunkSize, len(data))]
		p, _ = enc.encode(p, CodecZstd, chunk)
		d.add(len(chunk), sha256.Sum256(chunk))
	}
	st.length, st.frames, st.digest = d.length, d.frames, d.digest()
	sealed, err := sealBytes(r.seal(p, st), r.recips, false)
	if err != nil {
		t.Fatal(err)
	}
	return sealed
}

// WAL files written before 2026-12, whose seal digests the decoded bytes,
// still read: a complete segment, a partial one's record and a history
// file; changed content in them is still refused.
func TestWALDecodedDigestStillReads(t *testing.T) {
	r, ids := testRepo(t)
	seg := int(r.Info.SegmentSize)
	data := walBytes(seg, 9)
	for _, tli := range []uint32{1, 2} {
		if err := mkdirAll(r.walDir(tli)); err != nil {
			t.Fatal(err)
		}
	}
	complete := sealDecodedDigest(t, r, magicWALDecoded, nil, data, walStatement{kind: sealKindSegment, tli: 1, segNo: 2})
	if err := os.WriteFile(r.segPath(1, 2, segSuffix), complete, filePerm); err != nil {
		t.Fatal(err)
	}
	hdr := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 0), 3000)
	rec := sealDecodedDigest(t, r, magicRecordDecoded, hdr, data[:3000], walStatement{kind: sealKindRecord, tli: 1, segNo: 3})
	if err := os.WriteFile(r.segPath(1, 3, partialSuffix), append(binary.BigEndian.AppendUint32(nil, uint32(len(rec))), rec...), filePerm); err != nil {
		t.Fatal(err)
	}
	history := []byte("1\t0/3000000\tno recovery target specified\n")
	if err := os.WriteFile(r.historyPath(2), sealDecodedDigest(t, r, magicWALDecoded, nil, history, walStatement{kind: sealKindHistory, tli: 2}), filePerm); err != nil {
		t.Fatal(err)
	}
	if sd, err := r.ReadSegment(1, 2, ids); err != nil || !bytes.Equal(sd.Data, data) {
		t.Errorf("complete segment: %v; want its bytes back", err)
	}
	if sd, err := r.ReadSegment(1, 3, ids); err != nil || sd.Valid != 3000 || !bytes.Equal(sd.Data[:3000], data[:3000]) {
		t.Errorf("partial segment: %v; want its 3000 bytes back", err)
	}
	if got, err := r.ReadHistory(2, ids); err != nil || !bytes.Equal(got, history) {
		t.Errorf("history: %q, %v; want it back", got, err)
	}
	changed := bytes.Clone(data)
	changed[100] ^= 1
	// The changed frames under the genuine file's seal, as someone who
	// swapped the frames would leave them.
	plain, err := openBytes(sealDecodedDigest(t, r, magicWALDecoded, nil, changed, walStatement{kind: sealKindSegment, tli: 1, segNo: 2}), ids, false)
	if err != nil {
		t.Fatal(err)
	}
	genuine, _ := openBytes(complete, ids, false)
	swapped := append(bytes.Clone(plain[:len(plain)-frameHdr-sealSz]), genuine[len(genuine)-frameHdr-sealSz:]...)
	sealed, _ := sealBytes(swapped, r.recips, false)
	os.WriteFile(r.segPath(1, 2, segSuffix), sealed, filePerm)
	if _, err := r.ReadSegment(1, 2, ids); !errors.Is(err, ErrForged) {
		t.Errorf("changed content under a genuine seal: %v; want ErrForged", err)
	}
}

// The seal of a WAL file written now covers each frame as stored: a frame
// re-encoded (here zstd to raw, the same WAL) under the genuine seal is
// refused, so the digest never needs a pass over the decoded bytes.
func TestWALDigestCoversStoredFrames(t *testing.T) {
	r, ids := testRepo(t)
	seg := int(r.Info.SegmentSize)
	data := walBytes(seg, 4)
	storeWAL(t, r, 1, 2, [][]byte{data}, true)
	plain := segmentPlain(t, r, 2, ids)
	p, ok := bytes.CutPrefix(plain, []byte(magicWAL))
	if !ok || Codec(p[0]) != CodecZstd {
		t.Fatalf("segment starts %q; want %q and a zstd frame", plain[:min(len(plain), 5)], magicWAL)
	}
	stored := int(binary.BigEndian.Uint32(p[5:]))
	seal := p[frameHdr+stored:]
	reencoded := appendFrame([]byte(magicWAL), CodecRaw, len(data), data)
	sealed, err := sealBytes(append(reencoded, seal...), r.recips, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.segPath(1, 2, segSuffix), sealed, filePerm); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadSegment(1, 2, ids); !errors.Is(err, ErrForged) {
		t.Errorf("a frame re-encoded under the genuine seal: %v; want ErrForged", err)
	}
}
