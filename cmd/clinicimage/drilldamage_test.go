package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/clinicbox/clinicbox/drivers/testenv"
)

// flipByteInExt4File changes exactly the middle byte of a file spanning
// several blocks on an ext4 image, and refuses a file that is not there.
func TestFlipByteInExt4File(t *testing.T) {
	testenv.NeedCommand(t, "mkfs.ext4")
	testenv.NeedCommand(t, "debugfs")
	ctx := context.Background()
	dir := t.TempDir()
	image := filepath.Join(dir, "drive.img")
	if err := makeExt4Disk(ctx, image, 16<<20, "BACKUP"); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "seg")
	orig := bytes.Repeat([]byte("0123456789abcdef"), 3*4096/16+5)
	if err := os.WriteFile(src, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, req := range []string{"mkdir /wal", "write " + src + " /wal/seg"} {
		if out, err := exec.Command("debugfs", "-w", "-R", req, image).CombinedOutput(); err != nil {
			t.Fatalf("debugfs %s: %v %s", req, err, out)
		}
	}
	if err := flipByteInExt4File(ctx, image, "/wal/seg", filepath.Join(dir, "scratch")); err != nil {
		t.Fatal(err)
	}
	got, err := ext4Cat(ctx, image, "/wal/seg", filepath.Join(dir, "got"))
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Clone(orig)
	want[len(want)/2] ^= 0xff
	if !bytes.Equal(got, want) {
		t.Errorf("the file after the flip differs from the original in more or other than byte %d", len(want)/2)
	}
	if err := flipByteInExt4File(ctx, image, "/wal/none", filepath.Join(dir, "scratch")); err == nil {
		t.Errorf("flipping a byte of a missing file: no error")
	}
}
