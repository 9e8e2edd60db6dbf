package usbtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/clinicbox/clinicbox/drivers/testenv"
)

// Image says how to format a filesystem image.
type Image struct {
	Type  string // "ext4", "vfat" or "exfat"
	Label string // volume label; empty for none
	// ID is the volume id: a UUID for ext4, eight hex digits for vfat;
	// empty lets mkfs choose. mkfs.exfat cannot set one.
	ID   string
	Size int64 // bytes; zero means 32 MiB
	// Options are more arguments for mkfs, such as "-O", "encrypt".
	Options []string
}

var mkfs = map[string]string{"ext4": "mkfs.ext4", "vfat": "mkfs.vfat", "exfat": "mkfs.exfat"}

// MakeImage formats a new image file in t.TempDir() with the real mkfs and
// returns its path. It skips t (see testenv) when that mkfs is missing.
func MakeImage(t testing.TB, img Image) string {
	t.Helper()
	prog, ok := mkfs[img.Type]
	if !ok {
		t.Fatalf("usbtest: no mkfs for %q", img.Type)
	}
	prog = testenv.NeedCommand(t, prog)
	if img.Size == 0 {
		img.Size = 32 << 20
	}
	p := filepath.Join(t.TempDir(), img.Type+".img")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, img.Size); err != nil {
		t.Fatal(err)
	}
	var args []string
	switch img.Type {
	case "ext4":
		args = []string{"-q", "-F"}
		if img.Label != "" {
			args = append(args, "-L", img.Label)
		}
		if img.ID != "" {
			args = append(args, "-U", img.ID)
		}
	case "vfat":
		args = []string{"-F", "32"}
		if img.Label != "" {
			args = append(args, "-n", img.Label)
		}
		if img.ID != "" {
			args = append(args, "-i", img.ID)
		}
	case "exfat":
		if img.Label != "" {
			args = append(args, "-L", img.Label)
		}
	}
	args = append(args, img.Options...)
	out, err := exec.Command(prog, append(args, p)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", prog, args, err, out)
	}
	return p
}
