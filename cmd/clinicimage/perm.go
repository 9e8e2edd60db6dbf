package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
)

// gokrazy's images put /perm in the fourth GPT partition (after boot and
// the two roots) and leave it unformatted.
const permPartition = 4

// extent is a byte range inside an image file.
type extent struct{ Offset, Size int64 }

// gptPartition returns where partition n (1-based) of the image's primary
// GPT lies. It is hand-written because the module may not grow a disk
// library for twenty lines, and sfdisk is in a package (fdisk) the build
// machines do not otherwise need.
func gptPartition(r io.ReaderAt, n int) (extent, error) {
	const sector = 512
	hdr := make([]byte, 92)
	if _, err := r.ReadAt(hdr, sector); err != nil {
		return extent{}, fmt.Errorf("gpt: read header: %w", err)
	}
	if !bytes.Equal(hdr[:8], []byte("EFI PART")) {
		return extent{}, fmt.Errorf("gpt: no GPT header in LBA 1")
	}
	le := binary.LittleEndian
	entriesLBA := int64(le.Uint64(hdr[72:]))
	count := int(le.Uint32(hdr[80:]))
	size := int64(le.Uint32(hdr[84:]))
	if n < 1 || n > count || size < 128 {
		return extent{}, fmt.Errorf("gpt: partition %d of %d (entry size %d)", n, count, size)
	}
	e := make([]byte, 128)
	if _, err := r.ReadAt(e, entriesLBA*sector+int64(n-1)*size); err != nil {
		return extent{}, fmt.Errorf("gpt: read entry %d: %w", n, err)
	}
	first, last := int64(le.Uint64(e[32:])), int64(le.Uint64(e[40:]))
	if bytes.Equal(e[:16], make([]byte, 16)) || last < first {
		return extent{}, fmt.Errorf("gpt: partition %d is unused", n)
	}
	return extent{Offset: first * sector, Size: (last - first + 1) * sector}, nil
}

// imagePartition returns where partition n (1-based) of the image file
// lies.
func imagePartition(image string, n int) (extent, error) {
	f, err := os.Open(image)
	if err != nil {
		return extent{}, err
	}
	defer f.Close()
	e, err := gptPartition(f, n)
	if err != nil {
		return extent{}, fmt.Errorf("%s: %w", image, err)
	}
	return e, nil
}

// formatPerm makes an ext4 file system in the image's /perm partition,
// which the image builder leaves unformatted, and returns where it lies.
// When seed is not empty, the file system starts with a copy of the
// directory seed's contents (mkfs.ext4 -d), as if someone had put them on
// /perm before the first boot.
func formatPerm(ctx context.Context, image, seed string, stdout, stderr io.Writer) (extent, error) {
	perm, err := imagePartition(image, permPartition)
	if err != nil {
		return extent{}, err
	}
	// The encrypt feature lets restore drills keep their scratch space
	// encrypted with a key that lives only in the kernel (fscrypt).
	args := []string{"-q", "-F", "-L", "perm", "-O", "encrypt", "-E", "offset=" + strconv.FormatInt(perm.Offset, 10)}
	if seed != "" {
		args = append(args, "-d", seed)
	}
	args = append(args, image, strconv.FormatInt(perm.Size/1024, 10)+"k")
	cmd := exec.CommandContext(ctx, "mkfs.ext4", args...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Run(); err != nil {
		return extent{}, fmt.Errorf("format /perm of %s: %w", image, err)
	}
	return perm, nil
}
