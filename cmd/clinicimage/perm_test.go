package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clinicbox/clinicbox/drivers/testenv"
)

// gptFixture is the first 34 sectors (MBR, GPT header and entries) of an
// amd64 image that monogok wrote with --target_storage_bytes 1610612736.
func gptFixture(t *testing.T) []byte {
	t.Helper()
	f, err := os.Open("testdata/gpt-amd64.bin.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGPTPartition(t *testing.T) {
	const mb = 1 << 20
	img := bytes.NewReader(gptFixture(t))
	for _, tc := range []struct {
		n    int
		want extent
	}{
		{1, extent{8192 * 512, 100 * mb}},
		{2, extent{8192*512 + 100*mb, 500 * mb}},
		{3, extent{8192*512 + 600*mb, 500 * mb}},
		// monogok printed the /perm size as 442351 KiB for this image.
		{permPartition, extent{8192*512 + 1100*mb, 442351 * 1024}},
	} {
		got, err := gptPartition(img, tc.n)
		if err != nil || got != tc.want {
			t.Errorf("partition %d: got %+v, %v; want %+v", tc.n, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		name string
		img  []byte
		n    int
		want string
	}{
		{"unused entry", gptFixture(t), 5, "unused"},
		{"partition 0", gptFixture(t), 0, "partition 0"},
		{"beyond the table", gptFixture(t), 129, "partition 129"},
		{"no GPT", make([]byte, 17408), 4, "no GPT header"},
		{"short file", []byte("x"), 4, "read header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := gptPartition(bytes.NewReader(tc.img), tc.n)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestFormatPerm formats /perm of a sparse image file with the recorded
// partition table, with the real mkfs.ext4.
func TestFormatPerm(t *testing.T) {
	testenv.NeedCommand(t, "mkfs.ext4")
	const size = 1610612736
	path := filepath.Join(t.TempDir(), "img")
	table := gptFixture(t)
	if err := os.WriteFile(path, table, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
	perm, err := formatPerm(context.Background(), path, "", io.Discard, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sb := make([]byte, 1024)
	if _, err := f.ReadAt(sb, perm.Offset+1024); err != nil {
		t.Fatal(err)
	}
	if magic := binary.LittleEndian.Uint16(sb[56:]); magic != 0xef53 {
		t.Errorf("got superblock magic %#x at /perm; want 0xef53", magic)
	}
	// s_feature_incompat, EXT4_FEATURE_INCOMPAT_ENCRYPT: drills' scratch.
	if incompat := binary.LittleEndian.Uint32(sb[96:]); incompat&0x10000 == 0 {
		t.Errorf("/perm has no encrypt feature (incompat flags %#x)", incompat)
	}
	blocks := int64(binary.LittleEndian.Uint32(sb[4:]))
	blockSize := int64(1024) << binary.LittleEndian.Uint32(sb[24:])
	if blocks*blockSize > perm.Size {
		t.Errorf("got a file system of %d bytes; want at most the partition's %d", blocks*blockSize, perm.Size)
	}
	head := make([]byte, len(table))
	if _, err := f.ReadAt(head, 0); err != nil || !bytes.Equal(head, table) {
		t.Errorf("partition table changed by mkfs (%v)", err)
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != size {
		t.Errorf("got image size %v, %v; want %d", fi.Size(), err, size)
	}
}
