package archive

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A repository from a stranger's drive cannot hang or mislead a reader
// through its files: a FIFO, a symbolic link (to a device or to a file of
// the machine) or a huge file in place of the repository's identity is
// refused at once.
func TestHostileRepositoryFiles(t *testing.T) {
	tests := []struct {
		name  string
		plant func(path string) error
		want  string
	}{
		{"fifo", func(p string) error { return syscall.Mkfifo(p, 0o644) }, "not a regular file"},
		{"link to a device", func(p string) error { return os.Symlink("/dev/zero", p) }, "symbolic link"},
		{"link to a file of the machine", func(p string) error { return os.Symlink("/etc/passwd", p) }, "symbolic link"},
		{"directory", func(p string) error { return os.Mkdir(p, 0o755) }, "not a regular file"},
		{"huge", func(p string) error { return os.WriteFile(p, make([]byte, 1<<20), 0o644) }, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := tt.plant(filepath.Join(dir, infoFile)); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { _, err := Open(dir); done <- err }()
			err := <-done
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Open: %v; want an error saying %q", err, tt.want)
			}
		})
	}
}
