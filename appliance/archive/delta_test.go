package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

// pgTarOf writes files (name -> content, in the order of names) as a tar,
// as archive/tar writes it (PAX records for long names).
func pgTarOf(t *testing.T, names []string, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "global/", Typeflag: tar.TypeDir, Mode: 0o700})
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Size: int64(len(files[n])), Mode: 0o600, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			t.Fatal(err)
		}
		tw.Write(files[n])
	}
	tw.Close()
	return buf.Bytes()
}

// manifestOf is a manifest (by name) of files, with CRC32C checksums.
func manifestOf(files map[string][]byte) map[string]ManifestFile {
	m := map[string]ManifestFile{}
	for n, data := range files {
		h, format, _ := newChecksum("CRC32C")
		h.Write(data)
		m[n] = ManifestFile{Path: n, Size: int64(len(data)), Algorithm: "CRC32C", Checksum: format(h.Sum(nil))}
	}
	return m
}

// deltaOfTar builds the delta of tarball against parent.
func deltaOfTar(t *testing.T, tarball []byte, files map[string][]byte, parent *BlockMap) ([]byte, *BlockMap, DeltaStats) {
	t.Helper()
	var out bytes.Buffer
	db := &deltaBuilder{archive: "base.tar", parent: parent, child: &BlockMap{Backup: "x"}, manifest: manifestOf(files), seen: map[string]bool{}}
	if err := buildDelta(bytes.NewReader(tarball), &out, db); err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), db.child, db.stats
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// A chain of three tars in which files change a block, grow, shrink, vanish,
// appear and carry long names rebuilds each tar byte for byte from the full
// one and the deltas, and a delta sends only the changed blocks.
func TestDeltaChainRebuildsTarExactly(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	long := "base/16384/" + strings.Repeat("x", 120)
	v1 := map[string][]byte{"base/1/100": randBytes(rng, 3*BlockSize+100), "base/1/200": randBytes(rng, 2*BlockSize), "base/1/300": randBytes(rng, 10), long: randBytes(rng, BlockSize)}
	names1 := []string{"base/1/100", "base/1/200", "base/1/300", long}
	v2 := map[string][]byte{}
	for n, d := range v1 {
		v2[n] = bytes.Clone(d)
	}
	copy(v2["base/1/100"][BlockSize+5:], "changed")                      // one block changed
	v2["base/1/100"] = append(v2["base/1/100"], randBytes(rng, 9000)...) // extended
	v2["base/1/200"] = v2["base/1/200"][:BlockSize]                      // truncated
	delete(v2, "base/1/300")                                             // removed
	v2["base/2/400"] = randBytes(rng, 5000)                              // new
	names2 := []string{"base/2/400", long, "base/1/200", "base/1/100"}   // another order
	v3 := map[string][]byte{"base/1/100": bytes.Clone(v2["base/1/100"]), long: randBytes(rng, 2*BlockSize), "base/1/300": v1["base/1/300"]}
	v3["base/1/100"][0] ^= 1
	names3 := []string{"base/1/100", long, "base/1/300"}

	t1, t2, t3 := pgTarOf(t, names1, v1), pgTarOf(t, names2, v2), pgTarOf(t, names3, v3)
	_, m1, _ := deltaOfTar(t, t1, v1, nil)
	d2, m2, s2 := deltaOfTar(t, t2, v2, m1)
	d3, _, _ := deltaOfTar(t, t3, v3, m2)
	// v2 changed: block 1 and the tail (blocks 3, 4) of 100 and all of 400;
	// 200's first block and the long name's block are the same.
	if s2.Sent != 4 || s2.Blocks != 8 {
		t.Errorf("the second delta sent %d of %d blocks; want 4 of 8", s2.Sent, s2.Blocks)
	}

	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	st := &stage{root: root}
	defer st.close()
	if err := walkRawTar(bytes.NewReader(t1), tarVisitor{meta: func([]byte) error { return nil }, file: st.put}); err != nil {
		t.Fatal(err)
	}
	var got2 bytes.Buffer
	if err := applyDelta(bytes.NewReader(d2), st, &tarSink{w: &got2}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got2.Bytes(), t2) {
		t.Fatalf("the second tar rebuilt from the first and its delta differs (%d bytes; want %d)", got2.Len(), len(t2))
	}
	if err := applyDelta(bytes.NewReader(d2), st, &stageSink{st: st}); err != nil {
		t.Fatal(err)
	}
	var got3 bytes.Buffer
	if err := applyDelta(bytes.NewReader(d3), st, &tarSink{w: &got3}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got3.Bytes(), t3) {
		t.Fatalf("the third tar rebuilt through the chain differs")
	}
}

// A tar whose file does not match the manifest is refused while the delta
// is built: the box never signs it.
func TestDeltaChecksManifest(t *testing.T) {
	files := map[string][]byte{"base/1/1": bytes.Repeat([]byte("a"), 3*BlockSize)}
	tb := pgTarOf(t, []string{"base/1/1"}, files)
	man := manifestOf(files)
	mf := man["base/1/1"]
	mf.Checksum = "00000000"
	man["base/1/1"] = mf
	db := &deltaBuilder{archive: "base.tar", child: &BlockMap{}, manifest: man, seen: map[string]bool{}}
	err := buildDelta(bytes.NewReader(tb), io.Discard, db)
	if err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("got %v; want a checksum mismatch", err)
	}
}

// A block map with any byte changed, cut short or extended is refused as
// damaged; an intact one reads back as written.
func TestBlockMapDamageDetected(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	files := map[string][]byte{"base/1/1": randBytes(rng, 5*BlockSize), "base/1/2": randBytes(rng, 7)}
	_, m, _ := deltaOfTar(t, pgTarOf(t, []string{"base/1/1", "base/1/2"}, files), files, nil)
	var buf bytes.Buffer
	if err := m.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	back, err := DecodeBlockMap(good)
	if err != nil || len(back.Files) != 2 || !bytes.Equal(back.Files[0].Hashes, m.Files[0].Hashes) || back.Files[1].Size != 7 {
		t.Fatalf("round trip: %v, %+v", err, back)
	}
	for i := range good {
		bad := bytes.Clone(good)
		bad[i] ^= 0x40
		if _, err := DecodeBlockMap(bad); !errors.Is(err, ErrBlockMap) {
			t.Fatalf("byte %d flipped: got %v; want ErrBlockMap", i, err)
		}
	}
	for _, bad := range [][]byte{good[:len(good)-1], append(bytes.Clone(good), 0)} {
		if _, err := DecodeBlockMap(bad); !errors.Is(err, ErrBlockMap) {
			t.Fatalf("%d bytes: got %v; want ErrBlockMap", len(bad), err)
		}
	}
}
