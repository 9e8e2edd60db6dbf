package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// untar unpacks a tar stream beneath root. links lists the only symlinks
// the stream may hold (pg_tblspc/OID of the data directory) and what each
// must point to instead of what the archive says; a PostgreSQL base backup
// holds no other symlink, so any other is refused, which also rules out a
// chain of symlinks that leads out step by step.
func untar(rd io.Reader, root *os.Root, links map[string]string) error {
	return eachEntry(rd, func(h *tar.Header, tr io.Reader, bad string) error {
		if bad != "" {
			return fmt.Errorf("refusing entry %q: %s", h.Name, bad)
		}
		name := filepath.Clean(h.Name)
		if !filepath.IsLocal(name) && name != "." {
			return fmt.Errorf("refusing entry %q: path escapes the directory", h.Name)
		}
		if err := refuseSymlinkParents(root, name); err != nil {
			return err
		}
		return writeEntry(root, tr, h, name, links)
	})
}

// eachEntry walks a tar stream, telling fn why an entry is unsafe ("" when
// it is not).
func eachEntry(rd io.Reader, fn func(h *tar.Header, body io.Reader, unsafe string) error) error {
	tr := tar.NewReader(rd)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(h, tr, unsafeEntry(h)); err != nil {
			return err
		}
	}
}

// refuseSymlinkParents makes sure no directory on the way to an entry is a
// symlink (one an earlier entry planted or one already there). os.Root
// would keep such a write inside the root anyway; this says clearly why
// the archive is refused.
func refuseSymlinkParents(root *os.Root, name string) error {
	p := ""
	for part := range strings.SplitSeq(filepath.Dir(name), string(os.PathSeparator)) {
		if part == "." || part == "" {
			continue
		}
		p = filepath.Join(p, part)
		if fi, err := root.Lstat(p); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("refusing entry %q: it would be written through the symlink %s", name, p)
		}
	}
	return nil
}

func writeEntry(root *os.Root, tr io.Reader, h *tar.Header, name string, links map[string]string) error {
	switch h.Typeflag {
	case tar.TypeDir:
		if name == "." {
			return nil
		}
		return explainFS(root.MkdirAll(name, 0o700))
	case tar.TypeSymlink:
		want, ok := links[filepath.ToSlash(name)]
		if !ok {
			return fmt.Errorf("refusing symlink %q -> %q: a base backup holds symlinks only for its tablespaces (pg_tblspc/OID), and this one could lead outside the data directory", h.Name, h.Linkname)
		}
		if err := mkdirParent(root, name); err != nil {
			return err
		}
		return root.Symlink(want, name)
	case tar.TypeReg:
		return writeFile(root, tr, h, name)
	}
	return errors.New("refusing entry " + h.Name + ": unsupported type")
}

func writeFile(root *os.Root, tr io.Reader, h *tar.Header, name string) error {
	if h.Size > maxEntrySize || h.Size < 0 {
		return fmt.Errorf("refusing entry %q: %d bytes is larger than any PostgreSQL file", h.Name, h.Size)
	}
	if err := mkdirParent(root, name); err != nil {
		return err
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return explainFS(err)
	}
	if _, err := io.CopyN(f, tr, h.Size); err != nil {
		f.Close()
		return explainFS(err)
	}
	return explainFS(f.Close())
}

func mkdirParent(root *os.Root, name string) error {
	if dir := filepath.Dir(name); dir != "." {
		return explainFS(root.MkdirAll(dir, 0o700))
	}
	return nil
}
