package main

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clinicbox/clinicbox/drivers/testenv"
)

// patchelf (Debian 12's) moves .note.gnu.property when the loader path
// grows and leaves PT_GNU_PROPERTY on the old bytes, which a kernel that
// reads the header (arm64's, for BTI) refuses. After patchELF, with a
// loader path as long as the image's, the header holds a GNU property
// note again and the program still runs.
func TestFixGNUProperty(t *testing.T) {
	testenv.NeedCommand(t, "patchelf")
	src := withGNUProperty(t)
	f, err := elf.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	loader := interpreter(f)
	f.Close()
	dir := t.TempDir()
	prefix := filepath.Join(dir, strings.Repeat("p", 60))
	if err := os.MkdirAll(filepath.Join(prefix, "lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(loader, filepath.Join(prefix, "lib", filepath.Base(loader))); err != nil {
		t.Fatal(err)
	}
	prog := filepath.Join(dir, "prog")
	if err := copyFile(src, prog); err != nil {
		t.Fatal(err)
	}
	if err := patchELF(dir, prefix, filepath.Base(loader), []string{prog}, nil); err != nil {
		t.Fatal(err)
	}
	if err := gnuPropertyNote(prog); err != nil {
		t.Error(err)
	}
	if out, err := exec.Command(prog).CombinedOutput(); err != nil {
		t.Errorf("the patched %s: %v %s; want it to run", src, err, out)
	}
}

// withGNUProperty is a program of this machine that has PT_GNU_PROPERTY.
func withGNUProperty(t *testing.T) string {
	for _, p := range []string{"/bin/true", "/usr/bin/true"} {
		f, err := elf.Open(p)
		if err != nil {
			continue
		}
		for _, ph := range f.Progs {
			if ph.Type == elf.PT_GNU_PROPERTY {
				f.Close()
				return p
			}
		}
		f.Close()
	}
	testenv.Skip(t, "no program with PT_GNU_PROPERTY on this machine")
	return ""
}

// gnuPropertyNote checks that PT_GNU_PROPERTY covers a GNU property note.
func gnuPropertyNote(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type != elf.PT_GNU_PROPERTY {
			continue
		}
		b := make([]byte, 16)
		if _, err := p.ReadAt(b, 0); err != nil {
			return err
		}
		// Elf_Nhdr: namesz 4, descsz, type NT_GNU_PROPERTY_TYPE_0 (5), "GNU\0".
		if f.ByteOrder.Uint32(b) != 4 || f.ByteOrder.Uint32(b[8:]) != 5 || !bytes.Equal(b[12:16], []byte("GNU\x00")) {
			return fmt.Errorf("%s: PT_GNU_PROPERTY at offset %#x holds % x, not a GNU property note", path, p.Off, b)
		}
	}
	return nil
}
