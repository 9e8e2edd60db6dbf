package durable

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// WriteFile replaces the file whole, with the mode asked for even when the
// old file had another, makes missing directories, and leaves no
// temporary file behind.
func TestWriteFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "web")
	path := filepath.Join(dir, "key.pem")
	if err := WriteFile(path, []byte("first"), 0o644); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Dir(dir)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("made directory: %v %v; want mode 0700", fi.Mode(), err)
	}
	if err := WriteFile(path, []byte("second, longer"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "second, longer" {
		t.Fatalf("got %q %v; want the second content", b, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v %v; want 0600 (a key rewritten must not stay readable by all)", fi.Mode(), err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries; want only the file", len(ents))
	}
}

// A write that cannot finish says which file, and leaves what was there.
func TestWriteFileFailure(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "box.json")
	if err := os.Mkdir(path, 0o700); err != nil { // a directory where the file should go
		t.Fatal(err)
	}
	err := WriteFile(path, []byte("new"), 0o600)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("got %v; want an error naming %s", err, path)
	}
	if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
		t.Errorf("after the failed write: %v %v; want the directory untouched", fi, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("directory holds %d entries; want no temporary file left", len(ents))
	}
}
