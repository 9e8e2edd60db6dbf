package usbtest

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// CopyTree copies a recorded sysfs tree (directories, attribute files and the
// symlinks between them) into t.TempDir() and returns the copy's root, so a
// test can change it: remove a device, add one, watch a delete file.
func CopyTree(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, to)
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(to, b, 0o644)
		}
	})
	if err != nil {
		t.Fatalf("usbtest: copy sysfs tree: %v", err)
	}
	return dst
}
