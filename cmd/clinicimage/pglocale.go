package main

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// drillLocales are the compiled glibc locales each PostgreSQL tree
// carries, so that a drill can connect to a database whose collation is
// one of them: C.UTF-8, en_US.UTF-8 (what most US practices' servers are
// installed with), and es_US.UTF-8 and en_GB.UTF-8, which cost little more.
// They are named as Debian's packages name their directories; glibc finds
// "en_US.UTF-8" as en_US.utf8. A database in any other locale fails its
// drill with the locale named.
var drillLocales = []string{"C.utf8", "en_US.utf8", "es_US.utf8", "en_GB.utf8"}

// localePackages are where the locales come from, pinned in the lock
// beside the tree's C library and from the same glibc build: libc-bin
// holds C.utf8, locales-all every other locale, compiled by Debian for
// the architecture (localedef --no-archive, one directory per locale).
var localePackages = []string{"libc-bin", "locales-all"}

// pgLocaleDir is where a tree keeps its locales (pgN/locale); a drill's
// server runs with LOCPATH pointing there (pgbin.Search.Locales).
const pgLocaleDir = "locale"

// debLocaleRoot is where Debian's packages keep compiled locales.
const debLocaleRoot = "usr/lib/locale"

// maxLocaleFile bounds one compiled category file (LC_COLLATE, the
// largest, is about 2.6 MB).
const maxLocaleFile = 32 << 20

// splitLocalePins separates the packages the locales come from from those
// the tree is unpacked from, and checks that the locales were compiled by
// the glibc the tree carries (libc6 of the same version).
func splitLocalePins(ps []debPin) (tree, locales []debPin, err error) {
	libc := ""
	for _, p := range ps {
		if slices.Contains(localePackages, p.Package) {
			locales = append(locales, p)
			continue
		}
		if p.Package == "libc6" {
			libc = p.Version
		}
		tree = append(tree, p)
	}
	if len(locales) != len(localePackages) {
		return nil, nil, fmt.Errorf("%s pins %d of the locale packages %v for PostgreSQL %d; run .ci/pgpin", pgLockFile, len(locales), localePackages, ps[0].Major)
	}
	for _, p := range locales {
		if p.Version != libc {
			return nil, nil, fmt.Errorf("%s: %s %s and libc6 %q differ: compiled locales must come from the glibc the tree runs; run .ci/pgpin", pgLockFile, p.Package, p.Version, libc)
		}
	}
	return tree, locales, nil
}

// addLocales fetches the locale packages and copies drillLocales from
// them into dest, one directory per locale, each file a copy of what
// Debian's links point at. A locale the packages lack is an error.
func addLocales(ctx context.Context, ps []debPin, cache, dest string) error {
	for _, p := range ps {
		deb, err := fetchDeb(ctx, http.DefaultClient, cache, p)
		if err != nil {
			return err
		}
		if err := extractLocales(ctx, deb, dest); err != nil {
			return fmt.Errorf("locales from %s %s: %w", p.Package, p.Version, err)
		}
	}
	for _, l := range drillLocales {
		for _, c := range []string{"LC_CTYPE", "LC_COLLATE"} {
			if _, err := os.Stat(filepath.Join(dest, l, c)); err != nil {
				return fmt.Errorf("locales: %v hold no %s/%s", localePackages, l, c)
			}
		}
	}
	return nil
}

// extractLocales copies the files of drillLocales in the package deb into
// dest. It reads the package's files twice: first to resolve the links
// Debian replaces duplicate files with (to any other locale's file), then
// to copy the files they resolve to. Only regular files and links under
// usr/lib/locale count; a link leading out of it, or in a circle, is an
// error.
func extractLocales(ctx context.Context, deb, dest string) error {
	links := map[string]string{}
	err := walkDeb(ctx, deb, func(h *tar.Header, _ io.Reader) error {
		name, ok := localeEntry(h.Name)
		if ok && h.Typeflag == tar.TypeSymlink {
			links[name] = path.Join(path.Dir(name), h.Linkname)
			if path.IsAbs(h.Linkname) {
				links[name] = path.Clean(strings.TrimPrefix(h.Linkname, "/"))
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	want := map[string][]string{} // a regular file -> where it goes
	for name := range links {
		if err := wantLocaleFile(links, name, dest, want); err != nil {
			return err
		}
	}
	return walkDeb(ctx, deb, func(h *tar.Header, r io.Reader) error {
		name, ok := localeEntry(h.Name)
		if !ok || h.Typeflag != tar.TypeReg {
			return nil
		}
		if err := wantLocaleFile(links, name, dest, want); err != nil {
			return err
		}
		return writeLocaleFile(r, h.Size, want[name])
	})
}

// localeEntry returns a package file's path relative to the package's
// root, and whether it lies under usr/lib/locale.
func localeEntry(name string) (string, bool) {
	name = path.Clean(strings.TrimPrefix(name, "./"))
	return name, strings.HasPrefix(name, debLocaleRoot+"/")
}

// wantLocaleFile records in want where name goes when it belongs to one of
// drillLocales: the regular file its links lead to is copied to
// dest/LOCALE/...
func wantLocaleFile(links map[string]string, name, dest string, want map[string][]string) error {
	rel := strings.TrimPrefix(name, debLocaleRoot+"/")
	locale, file, ok := strings.Cut(rel, "/")
	if !ok || !slices.Contains(drillLocales, locale) || !filepath.IsLocal(file) {
		return nil
	}
	target := name
	for hops := 0; links[target] != ""; hops++ {
		if hops == 8 {
			return fmt.Errorf("%s: links in a circle", name)
		}
		target = links[target]
	}
	if _, ok := localeEntry(target); !ok {
		return fmt.Errorf("%s links outside %s, to %s", name, debLocaleRoot, target)
	}
	to := filepath.Join(dest, locale, file)
	if !slices.Contains(want[target], to) {
		want[target] = append(want[target], to)
	}
	return nil
}

// writeLocaleFile copies one file of the package to each of its places.
func writeLocaleFile(r io.Reader, size int64, to []string) error {
	if len(to) == 0 {
		return nil
	}
	if size > maxLocaleFile {
		return fmt.Errorf("%s: %d bytes, more than a compiled locale's file can be (%d)", to[0], size, maxLocaleFile)
	}
	b, err := io.ReadAll(io.LimitReader(r, maxLocaleFile))
	if err != nil {
		return err
	}
	for _, p := range to {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// walkDeb calls fn for each file of the package deb (dpkg-deb writes its
// files as one tar stream), in the package's order.
func walkDeb(ctx context.Context, deb string, fn func(*tar.Header, io.Reader) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, "dpkg-deb", "--fsys-tarfile", deb)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	err = walkTar(out, fn)
	if err != nil {
		cancel()
	}
	if werr := cmd.Wait(); err == nil && werr != nil {
		err = fmt.Errorf("dpkg-deb --fsys-tarfile %s: %w: %s", filepath.Base(deb), werr, stderr.String())
	}
	return err
}

// walkTar calls fn for each entry of the tar stream r.
func walkTar(r io.Reader, fn func(*tar.Header, io.Reader) error) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(h, tr); err != nil {
			return err
		}
	}
}
