package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// pgTreeRoot is where the image carries its PostgreSQL trees, one pgN per
// major version (cmd/clinicbox's -pg-dir).
const pgTreeRoot = "/usr/lib/clinicbox"

// debArch maps GOARCH to Debian's architecture name.
var debArch = map[string]string{"amd64": "amd64", "arm64": "arm64"}

// pgTree is what one major version's tree keeps of Debian's packages:
// the two programs a drill runs, the server's loadable modules but the
// JIT, and the share files a running server reads (time zone
// abbreviations, extension scripts such as amcheck's, text search data),
// and a few compiled locales (drillLocales). initdb's files, the client
// programs, documentation and every other locale stay out.
var (
	pgPrograms = []string{"postgres", "pg_ctl"}
	// pgModulesOut are the modules left out: the JIT, and those that
	// connect to other servers (streaming replication, dblink,
	// postgres_fdw), which a restored database in a drill must not do.
	pgModulesOut = []string{"llvmjit", "libpqwalreceiver", "dblink", "postgres_fdw"}
	pgShare      = []string{"timezonesets", "extension", "tsearch_data"}
)

// pgTrees holds, for the image, one tree per major version the lock pins
// for the architecture, and the time zone data PostgreSQL reads from
// /usr/share/zoneinfo (Debian builds it with --with-system-tzdata).
type pgTrees struct {
	Dir      string // holds pgN/ for each major version
	Zoneinfo string
	Majors   []int
}

// buildPGTrees fetches the pinned packages for goarch into cache and
// unpacks them into out. prefix is where out lands in the running system
// (pgTreeRoot in the image): the programs' loader path is absolute.
func buildPGTrees(ctx context.Context, lock io.Reader, goarch, cache, out, prefix string) (*pgTrees, error) {
	arch, ok := debArch[goarch]
	if !ok {
		return nil, fmt.Errorf("postgres for the image: no Debian architecture for GOARCH %s", goarch)
	}
	pins, err := readPins(lock, arch)
	if err != nil {
		return nil, err
	}
	if err := os.RemoveAll(out); err != nil {
		return nil, err
	}
	t := &pgTrees{Dir: filepath.Join(out, "lib"), Zoneinfo: filepath.Join(out, "zoneinfo")}
	for major, ps := range pins {
		if err := buildPGTree(ctx, ps, cache, out, t.Dir, prefix); err != nil {
			return nil, fmt.Errorf("postgres %d for %s: %w", major, arch, err)
		}
		t.Majors = append(t.Majors, major)
	}
	slices.Sort(t.Majors)
	// The newest release's time zone data serves every version.
	newest := filepath.Join(out, "stage"+strconv.Itoa(t.Majors[len(t.Majors)-1]))
	if err := copyTree(newest, filepath.Join(newest, "usr/share/zoneinfo"), t.Zoneinfo); err != nil {
		return nil, fmt.Errorf("postgres for the image: time zone data: %w", err)
	}
	for _, m := range t.Majors {
		os.RemoveAll(filepath.Join(out, "stage"+strconv.Itoa(m)))
	}
	return t, nil
}

// buildPGTree builds one major version's tree, pgN in dir, with its
// locales in pgN/locale, unpacking its packages in out/stageN (removed
// by the caller).
func buildPGTree(ctx context.Context, ps []debPin, cache, out, dir, prefix string) error {
	major := ps[0].Major
	ps, locales, err := splitLocalePins(ps)
	if err != nil {
		return err
	}
	stage := filepath.Join(out, "stage"+strconv.Itoa(major))
	if err := unpackDebs(ctx, ps, cache, stage); err != nil {
		return err
	}
	name := "pg" + strconv.Itoa(major)
	if err := assemblePG(stage, filepath.Join(dir, name), major, prefix+"/"+name); err != nil {
		return err
	}
	return addLocales(ctx, locales, cache, filepath.Join(dir, name, pgLocaleDir))
}

// unpackDebs fetches and unpacks packages into stage. dpkg-deb does the
// unpacking: a .deb is an ar archive of compressed tars (xz or zstd,
// depending on the release), and every machine that builds the image is
// Debian.
func unpackDebs(ctx context.Context, ps []debPin, cache, stage string) error {
	if err := os.MkdirAll(stage, 0o755); err != nil {
		return err
	}
	for _, p := range ps {
		deb, err := fetchDeb(ctx, http.DefaultClient, cache, p)
		if err != nil {
			return err
		}
		if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", deb, stage).CombinedOutput(); err != nil {
			return fmt.Errorf("dpkg-deb -x %s: %w: %s", p.Package, err, out)
		}
	}
	return nil
}

// assemblePG copies what a drill needs of one unpacked major version
// from stage to dest (laid out as Debian's packages, so PostgreSQL finds
// its share directory relative to its programs), with every library the
// programs and modules need in dest/lib. The programs load them through
// the loader at prefix/lib and their run path.
func assemblePG(stage, dest string, major int, prefix string) error {
	bin := fmt.Sprintf("usr/lib/postgresql/%d/bin", major)
	pkglib := fmt.Sprintf("usr/lib/postgresql/%d/lib", major)
	var elves []string
	for _, p := range pgPrograms {
		if err := copyFile(filepath.Join(stage, bin, p), filepath.Join(dest, bin, p)); err != nil {
			return err
		}
		elves = append(elves, filepath.Join(dest, bin, p))
	}
	mods, err := filepath.Glob(filepath.Join(stage, pkglib, "*.so"))
	if err != nil {
		return err
	}
	for _, m := range mods {
		if leaveOut(filepath.Base(m)) {
			continue
		}
		to := filepath.Join(dest, pkglib, filepath.Base(m))
		if err := copyFile(m, to); err != nil {
			return err
		}
		elves = append(elves, to)
	}
	for _, s := range pgShare {
		from := filepath.Join(stage, fmt.Sprintf("usr/share/postgresql/%d", major), s)
		if err := copyTree(stage, from, filepath.Join(dest, fmt.Sprintf("usr/share/postgresql/%d", major), s)); err != nil {
			return err
		}
	}
	loader, err := copyLibraries(stage, filepath.Join(dest, "lib"), elves)
	if err != nil {
		return err
	}
	return patchELF(dest, prefix, loader, elves[:len(pgPrograms)], elves[len(pgPrograms):])
}

// leaveOut reports whether a module stays out of the tree (pgModulesOut).
func leaveOut(module string) bool {
	name := strings.TrimSuffix(module, ".so")
	for _, out := range pgModulesOut {
		if name == out || strings.HasPrefix(name, out+"_") || strings.HasPrefix(name, out+".") {
			return true
		}
	}
	return false
}
