package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"
)

// ExtractOptions say where a backup is unpacked.
type ExtractOptions struct {
	Identities []age.Identity
	// Tablespaces maps a tablespace's original location to a new one;
	// unmapped tablespaces return to their original location.
	Tablespaces map[string]string
	// Progress, when set, is called with stored bytes read so far.
	Progress func(done int64)
}

// maxEntrySize bounds one file in a base backup: PostgreSQL splits relations
// into 1 GB segments, so anything far larger is hostile.
const maxEntrySize = 4 << 30

// Extract unpacks a backup into pgdata, which must be empty or missing.
// Entries that would escape their directory (.., absolute paths, symlinks
// pointing out), device files and oversized entries are refused.
func (r *Repo) Extract(b *Backup, pgdata string, opt ExtractOptions) error {
	if entries, err := os.ReadDir(pgdata); err == nil && len(entries) > 0 {
		return fmt.Errorf("archive: %s is not empty; restore into an empty directory so nothing is overwritten", pgdata)
	}
	if err := os.MkdirAll(pgdata, 0o700); err != nil {
		return fmt.Errorf("archive: %w", explainFS(err))
	}
	var read int64
	for _, f := range b.Files {
		dest, links := pgdata, map[string]string{}
		switch {
		case f.Archive == manifestName:
			if err := r.copyOut(b, f, filepath.Join(pgdata, manifestName), opt.Identities); err != nil {
				return err
			}
			continue
		case f.Location != "":
			dest = f.Location
			if m, ok := opt.Tablespaces[f.Location]; ok {
				dest = m
			}
			if err := os.MkdirAll(dest, 0o700); err != nil {
				return fmt.Errorf("archive: tablespace %s: %w", dest, explainFS(err))
			}
		default:
			links = b.tablespaceLinks(opt.Tablespaces)
		}
		rc, err := r.OpenFile(b, f, opt.Identities)
		if err != nil {
			return err
		}
		err = untar(rc, dest, links)
		rc.Close()
		if err != nil {
			return fmt.Errorf("archive: backup %s: %s: %w", b.ID, f.Name, err)
		}
		read += f.Size
		if opt.Progress != nil {
			opt.Progress(read)
		}
	}
	return nil
}

// tablespaceLinks maps pg_tblspc/OID to where each tablespace is restored.
func (b *Backup) tablespaceLinks(remap map[string]string) map[string]string {
	out := map[string]string{}
	for _, ts := range b.Tablespaces {
		loc := ts.Location
		if m, ok := remap[loc]; ok {
			loc = m
		}
		out[fmt.Sprintf("pg_tblspc/%d", ts.OID)] = loc
	}
	return out
}

func (r *Repo) copyOut(b *Backup, f StoredFile, dest string, ids []age.Identity) error {
	rc, err := r.OpenFile(b, f, ids)
	if err != nil {
		return err
	}
	defer rc.Close()
	return writeAtomic(dest, func(w io.Writer) error { _, err := io.Copy(w, rc); return err })
}

// untar unpacks a tar stream into dir. links lists the only symlinks that
// may point outside dir (tablespaces) and where they must point.
func untar(rd io.Reader, dir string, links map[string]string) error {
	return eachEntry(rd, func(h *tar.Header, tr io.Reader, bad string) error {
		if bad != "" {
			return fmt.Errorf("refusing entry %q: %s", h.Name, bad)
		}
		name := filepath.Clean(h.Name)
		target := filepath.Join(dir, name)
		if !strings.HasPrefix(target, filepath.Clean(dir)+string(os.PathSeparator)) && target != filepath.Clean(dir) {
			return fmt.Errorf("refusing entry %q: path escapes the directory", h.Name)
		}
		if err := refuseSymlinkParents(dir, name); err != nil {
			return err
		}
		return writeEntry(tr, h, target, name, links)
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
// symlink an earlier entry planted.
func refuseSymlinkParents(dir, name string) error {
	p := dir
	parts := strings.Split(filepath.Dir(name), string(os.PathSeparator))
	for _, part := range parts {
		if part == "." || part == "" {
			continue
		}
		p = filepath.Join(p, part)
		if fi, err := os.Lstat(p); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("refusing entry %q: it would be written through the symlink %s", name, p)
		}
	}
	return nil
}

func writeEntry(tr io.Reader, h *tar.Header, target, name string, links map[string]string) error {
	switch h.Typeflag {
	case tar.TypeDir:
		return os.MkdirAll(target, 0o700)
	case tar.TypeSymlink:
		want, ok := links[filepath.ToSlash(name)]
		if !ok {
			if filepath.IsAbs(h.Linkname) || !filepath.IsLocal(filepath.Join(filepath.Dir(name), h.Linkname)) {
				return fmt.Errorf("refusing symlink %q -> %q: it points outside the data directory", h.Name, h.Linkname)
			}
			want = h.Linkname
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
			return err
		}
		return os.Symlink(want, target)
	case tar.TypeReg:
		if h.Size > maxEntrySize || h.Size < 0 {
			return fmt.Errorf("refusing entry %q: %d bytes is larger than any PostgreSQL file", h.Name, h.Size)
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
			return err
		}
		f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("%w", explainFS(err))
		}
		if _, err := io.CopyN(f, tr, h.Size); err != nil {
			f.Close()
			return explainFS(err)
		}
		return explainFS(f.Close())
	}
	return errors.New("refusing entry " + h.Name + ": unsupported type")
}
