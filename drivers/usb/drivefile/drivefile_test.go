package drivefile_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/clinicbox/clinicbox/drivers/usb/drivefile"
)

// Every kind of name a stranger's drive can hold where a small file is
// expected: only the regular file of at most the cap is read, and nothing
// blocks or reads without limit.
func TestReadFileRefusesHostileFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, size int) {
		if err := os.WriteFile(filepath.Join(dir, name), bytes.Repeat([]byte("x"), size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("ok.json", 100)
	write("huge.json", 2<<20)
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Symlink("/dev/zero", filepath.Join(dir, "zero.json"))
	os.Symlink("ok.json", filepath.Join(dir, "link.json"))
	os.Mkdir(filepath.Join(dir, "dir.json"), 0o755)
	os.Symlink(dir, filepath.Join(dir, "via"))
	tests := []struct {
		name string
		want error // nil: read
	}{
		{"ok.json", nil},
		{"huge.json", drivefile.ErrTooLarge},
		{"fifo.json", drivefile.ErrNotRegular},
		{"zero.json", drivefile.ErrNotRegular},
		{"link.json", drivefile.ErrNotRegular},
		{"dir.json", drivefile.ErrNotRegular},
		{"via/ok.json", drivefile.ErrNotRegular},
		{"missing.json", os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := drivefile.ReadFile(context.Background(), filepath.Join(dir, tt.name), 64<<10)
			if tt.want == nil {
				if err != nil || len(b) != 100 {
					t.Fatalf("got %d bytes, %v; want 100 bytes", len(b), err)
				}
				return
			}
			if !errors.Is(err, tt.want) || b != nil {
				t.Fatalf("got %d bytes, %v; want %v", len(b), err, tt.want)
			}
		})
	}
}
