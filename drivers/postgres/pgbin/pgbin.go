// Package pgbin finds the PostgreSQL server programs of one major version
// and the user they run as, so that a restore (restore step of the data
// path) runs the version its backup came from and never another.
package pgbin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ErrMissing means no programs of the wanted major version were found.
var ErrMissing = errors.New("pgbin: PostgreSQL programs of that version not found")

// Layouts are the install layouts searched by default, each a path with %d
// where the major version goes: Debian's and Ubuntu's packages, the PGDG
// packages for Red Hat, and the PostgreSQL 17 tree the tests build
// (TestTree).
func Layouts() []string {
	return []string{
		"/usr/lib/postgresql/%d/bin",
		"/usr/pgsql-%d/bin",
		filepath.Join(TestTree(), "usr/lib/postgresql/%d/bin"),
	}
}

// TestTree is where .ci/pg17 builds Debian 13's PostgreSQL 17 for the
// tests: $CLINICBOX_PG17, else /var/cache/clinicbox/pg17-trixie.
func TestTree() string {
	if d := os.Getenv("CLINICBOX_PG17"); d != "" {
		return d
	}
	return "/var/cache/clinicbox/pg17-trixie"
}

// Search says where to look for programs.
type Search struct {
	// Dir, when set, is the only place looked at: a directory of programs
	// the operator chose. It must hold the wanted major version.
	Dir string
	// Layouts replace Layouts() when not nil (the box's image carries one
	// directory per major version).
	Layouts []string
	// NoPath leaves PATH out; otherwise a postgres on PATH of the wanted
	// major version is the last resort.
	NoPath bool
	// Hint says how the operator names a directory of programs instead,
	// for error messages; empty means "pass --pg-bin DIR".
	Hint string
	// Locales, when set, is where the compiled locales that go with the
	// programs found in Layouts are, with %d where the major version goes
	// (the box's image carries a few in each tree). The server then runs
	// with LOCPATH set to it, and no locale of the machine's own is used.
	// Empty means the machine's locales.
	Locales string
}

// Bin is a directory of PostgreSQL server programs of one major version.
type Bin struct {
	Dir     string
	Major   int
	Version string // as postgres -V says it, like "17.12 (Debian 17.12-1)"
	// Locales is the directory of compiled locales the server runs with
	// (LOCPATH); empty means the machine's.
	Locales string
}

// Env is the environment the programs run in: env with LOCPATH set to
// Locales when there are any.
func (b Bin) Env(env []string) []string {
	if b.Locales == "" {
		return env
	}
	return append(env, "LOCPATH="+b.Locales)
}

// Path is the full path of one of the programs (postgres, pg_ctl, initdb).
func (b Bin) Path(prog string) string { return filepath.Join(b.Dir, prog) }

// Major is the major version of a server_version_num (150018 is 15).
func Major(serverVersionNum int) int { return serverVersionNum / 10000 }

// Find returns the programs of the given major version. A directory of
// another major is never returned; when none fits, the error is a
// *MissingError that names the version and how to install it.
func (s Search) Find(ctx context.Context, major int) (Bin, error) {
	if major < 10 {
		return Bin{}, fmt.Errorf("pgbin: PostgreSQL major version %d: clinicbox restores 15 and newer", major)
	}
	miss := &MissingError{Major: major, Hint: s.Hint}
	if s.Dir != "" {
		return s.findIn(ctx, major, miss)
	}
	layouts := s.Layouts
	if layouts == nil {
		layouts = Layouts()
	}
	var dirs []string
	for _, l := range layouts {
		dirs = append(dirs, strings.ReplaceAll(l, "%d", strconv.Itoa(major)))
	}
	if p, err := exec.LookPath("postgres"); err == nil && !s.NoPath {
		dirs = append(dirs, filepath.Dir(p))
	}
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err != nil {
			continue
		}
		miss.Looked = append(miss.Looked, d)
		if b, err := Probe(ctx, d); err == nil && b.Major == major {
			return s.withLocales(b), nil
		}
	}
	if len(miss.Looked) == 0 {
		miss.Looked = dirs
	}
	return Bin{}, miss
}

// withLocales gives b the locales of its major version (Search.Locales)
// when that directory exists.
func (s Search) withLocales(b Bin) Bin {
	if s.Locales == "" {
		return b
	}
	d := strings.ReplaceAll(s.Locales, "%d", strconv.Itoa(b.Major))
	if fi, err := os.Stat(d); err == nil && fi.IsDir() {
		b.Locales = d
	}
	return b
}

// findIn checks the one directory the operator chose.
func (s Search) findIn(ctx context.Context, major int, miss *MissingError) (Bin, error) {
	// Absolute: pg_ctl runs from elsewhere.
	dir, err := filepath.Abs(s.Dir)
	if err != nil {
		return Bin{}, fmt.Errorf("pgbin: %w", err)
	}
	b, err := Probe(ctx, dir)
	if err == nil && b.Major == major {
		return b, nil
	}
	miss.Looked, miss.Wrong, miss.Explicit, miss.Err = []string{dir}, b.Major, true, err
	return Bin{}, miss
}

// MissingError says which major version was wanted and where it was looked
// for. It matches ErrMissing.
type MissingError struct {
	Major    int
	Looked   []string
	Explicit bool  // Looked is the one directory the operator chose
	Wrong    int   // the major version found there instead, or 0
	Err      error // why that directory did not answer, or nil
	Hint     string
}

func (e *MissingError) Error() string {
	hint := e.Hint
	if hint == "" {
		hint = "pass --pg-bin DIR (the directory of its postgres and pg_ctl)"
	}
	fix := fmt.Sprintf("install postgresql-%d or %s", e.Major, hint)
	switch {
	case e.Explicit && e.Wrong != 0:
		return fmt.Sprintf("pgbin: this backup is from PostgreSQL %d, and %s holds PostgreSQL %d, which cannot run it; %s", e.Major, e.Looked[0], e.Wrong, fix)
	case e.Explicit:
		return fmt.Sprintf("pgbin: this backup is from PostgreSQL %d, and %s holds no PostgreSQL server that answers (%v); %s", e.Major, e.Looked[0], e.Err, fix)
	}
	return fmt.Sprintf("pgbin: this backup is from PostgreSQL %d; it is not installed here (looked in %s); %s", e.Major, strings.Join(e.Looked, ", "), fix)
}

// Is makes errors.Is(err, ErrMissing) hold.
func (e *MissingError) Is(target error) bool { return target == ErrMissing }

var versionRE = regexp.MustCompile(`\(PostgreSQL\) ((\d+)(?:\.\d+)?[^\n]*)`)

// Probe asks the postgres program in dir its version (postgres -V), and
// checks that pg_ctl is beside it.
func Probe(ctx context.Context, dir string) (Bin, error) {
	if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err != nil {
		return Bin{}, fmt.Errorf("pgbin: %s has no pg_ctl: %w", dir, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var out limited
	out.max = 4096
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "postgres"), "-V")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return Bin{}, fmt.Errorf("pgbin: %s -V: %w: %q", cmd.Path, err, bytes.TrimSpace(out.b[:min(len(out.b), 200)]))
	}
	m := versionRE.FindSubmatch(out.b)
	if m == nil {
		return Bin{}, fmt.Errorf("pgbin: %s -V said %q, not a PostgreSQL version", cmd.Path, bytes.TrimSpace(out.b[:min(len(out.b), 200)]))
	}
	major, _ := strconv.Atoi(string(m[2]))
	return Bin{Dir: dir, Major: major, Version: strings.TrimSpace(string(m[1]))}, nil
}

// limited keeps the first max bytes written to it: a program that is not
// postgres may say a lot.
type limited struct {
	b   []byte
	max int
}

func (l *limited) Write(p []byte) (int, error) {
	if room := l.max - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// PostmasterPID reads the server's process ID from the first line of
// postmaster.pid in the data directory dataDir.
func PostmasterPID(dataDir string) (int, error) {
	name := filepath.Join(dataDir, "postmaster.pid")
	b, err := os.ReadFile(name)
	if err != nil {
		return 0, fmt.Errorf("postgres: %w", err)
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	pid, err := strconv.Atoi(string(bytes.TrimSpace(line)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("postgres: %s: no process ID on its first line", name)
	}
	return pid, nil
}
