package main

import (
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// libTriplets are Debian's multiarch library directories by machine.
var libTriplets = map[elf.Machine]string{elf.EM_X86_64: "x86_64-linux-gnu", elf.EM_AARCH64: "aarch64-linux-gnu"}

// copyLibraries copies into libDir every shared library the ELF files
// need, directly or through other libraries, found in the unpacked stage,
// and the dynamic loader the first of them names. It returns the loader's
// file name. A library the packages do not hold is an error that names it.
func copyLibraries(stage, libDir string, elves []string) (string, error) {
	first, err := elf.Open(elves[0])
	if err != nil {
		return "", err
	}
	triplet, interp := libTriplets[first.Machine], interpreter(first)
	first.Close()
	if triplet == "" || interp == "" {
		return "", fmt.Errorf("%s: not a dynamically linked amd64 or arm64 program", elves[0])
	}
	dirs := []string{"lib/" + triplet, "usr/lib/" + triplet, "lib", "usr/lib"}
	loader := filepath.Base(interp)
	queue := append([]string(nil), elves...)
	seen := map[string]bool{loader: true}
	if err := copyLib(stage, dirs, loader, libDir); err != nil {
		return "", err
	}
	for len(queue) > 0 {
		f, err := elf.Open(queue[0])
		if err != nil {
			return "", err
		}
		needed, err := f.ImportedLibraries()
		f.Close()
		if err != nil {
			return "", fmt.Errorf("%s: %w", queue[0], err)
		}
		queue = queue[1:]
		for _, so := range needed {
			if seen[so] {
				continue
			}
			seen[so] = true
			if err := copyLib(stage, dirs, so, libDir); err != nil {
				return "", err
			}
			queue = append(queue, filepath.Join(libDir, so))
		}
	}
	return loader, nil
}

// interpreter is the program's loader path (PT_INTERP), or "".
func interpreter(f *elf.File) string {
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b, err := io.ReadAll(io.LimitReader(p.Open(), 4096))
			if err == nil {
				return strings.TrimRight(string(b), "\x00")
			}
		}
	}
	return ""
}

// copyLib finds the library file named so in the stage's library
// directories and copies it, symbolic links followed, to libDir/so.
func copyLib(stage string, dirs []string, so, libDir string) error {
	for _, d := range dirs {
		p, err := resolveIn(stage, filepath.Join(stage, d, so))
		if err == nil {
			return copyFile(p, filepath.Join(libDir, so))
		}
	}
	return fmt.Errorf("no %s in the pinned packages (looked in %s); add its package to .ci/pgpin's set", so, strings.Join(dirs, ", "))
}

// resolveIn follows symbolic links of the unpacked tree root: an absolute
// link points into root, not into the machine building the image.
func resolveIn(root, p string) (string, error) {
	for range 40 {
		fi, err := os.Lstat(p)
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			if !strings.HasPrefix(p, root+string(filepath.Separator)) {
				return "", fmt.Errorf("%s leads out of the unpacked packages", p)
			}
			return p, nil
		}
		link, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		if filepath.IsAbs(link) {
			p = filepath.Join(root, link)
		} else {
			p = filepath.Join(filepath.Dir(p), link)
		}
	}
	return "", fmt.Errorf("%s: too many symbolic links", p)
}

// patchELF points the programs at the tree's loader, and programs and
// modules at the tree's libraries: DT_RPATH (not RUNPATH), which also
// serves the libraries they load, relative to each file ($ORIGIN, five
// levels up from usr/lib/postgresql/N/{bin,lib} to the tree).
func patchELF(dest, prefix, loader string, programs, modules []string) error {
	rpath := "$ORIGIN/../../../../../lib"
	for _, f := range append(programs, modules...) {
		args := []string{"--force-rpath", "--set-rpath", rpath, f}
		if !strings.HasSuffix(f, ".so") {
			args = append([]string{"--set-interpreter", prefix + "/lib/" + loader}, args...)
		}
		if out, err := exec.Command("patchelf", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("patchelf %s: %w: %s", f, err, out)
		}
		if err := fixGNUProperty(f); err != nil {
			return err
		}
	}
	return nil
}

// fixGNUProperty points the file's PT_GNU_PROPERTY program header at its
// .note.gnu.property section again. Debian 12's patchelf moves the section
// when the loader path grows but leaves the header at the old offset, on
// bytes that are no property note; Linux reads that header when it starts
// a program and refuses the program (ENOEXEC) when no note is there. A
// file without the header is left as it is; one with the header and
// without the section loses the header (PT_NULL), which only drops
// optional hardening marks.
func fixGNUProperty(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	ef, err := elf.NewFile(f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if ef.Class != elf.ELFCLASS64 {
		return fmt.Errorf("%s: not a 64-bit ELF file", path)
	}
	i := slices.IndexFunc(ef.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_GNU_PROPERTY })
	if i < 0 {
		return nil
	}
	var hdr [64]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	bo := ef.ByteOrder
	// Elf64_Ehdr: e_phoff at 32, e_phentsize at 54; Elf64_Phdr: p_type at
	// 0, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz at 8 to 48.
	ph := int64(bo.Uint64(hdr[32:])) + int64(i)*int64(bo.Uint16(hdr[54:]))
	phdr := make([]byte, 48)
	if sec := ef.Section(".note.gnu.property"); sec == nil {
		bo.PutUint32(phdr, uint32(elf.PT_NULL))
		_, err = f.WriteAt(phdr[:4], ph)
	} else if p := ef.Progs[i]; p.Off != sec.Offset || p.Vaddr != sec.Addr || p.Filesz != sec.Size {
		for j, v := range []uint64{sec.Offset, sec.Addr, sec.Addr, sec.Size, sec.Size} {
			bo.PutUint64(phdr[8+8*j:], v)
		}
		_, err = f.WriteAt(phdr[8:], ph+8)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}

// copyFile copies a regular file with its permission bits.
func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fi.Mode().Perm()|0o444)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// copyTree copies the directory from to to, with symbolic links inside
// the unpacked tree root replaced by copies of what they point at (the
// image builder would follow them on this machine).
func copyTree(root, from, to string) error {
	return filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		src, err := resolveIn(root, p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // a link to what the packages do not hold (zoneinfo/localtime to /etc/localtime)
		}
		if err != nil {
			return err
		}
		if fi, err := os.Stat(src); err != nil || fi.IsDir() {
			return nil // a link to a directory: its files are copied where they are
		}
		return copyFile(src, filepath.Join(to, rel))
	})
}
