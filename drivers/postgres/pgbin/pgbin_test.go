package pgbin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeInstall makes root/<major>/bin with a postgres that answers -V as
// the given version says, and a pg_ctl beside it.
func fakeInstall(t *testing.T, root string, major int, says string) string {
	t.Helper()
	dir := filepath.Join(root, fmt.Sprint(major), "bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\necho '" + says + "'\n"
	for _, p := range []string{"postgres", "pg_ctl"} {
		if err := os.WriteFile(filepath.Join(dir, p), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestFind(t *testing.T) {
	root := t.TempDir()
	d15 := fakeInstall(t, root, 15, "postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)")
	d17 := fakeInstall(t, root, 17, "postgres (PostgreSQL) 17.12 (Debian 17.12-1)")
	// A directory named 16 that holds another version must not pass as 16.
	fakeInstall(t, root, 16, "postgres (PostgreSQL) 15.14")
	s := Search{Layouts: []string{filepath.Join(root, "%d/bin")}, NoPath: true}
	ctx := context.Background()
	for _, tc := range []struct {
		major   int
		dir     string
		version string
	}{{15, d15, "15.14 (Debian 15.14-0+deb12u1)"}, {17, d17, "17.12 (Debian 17.12-1)"}} {
		b, err := s.Find(ctx, tc.major)
		if err != nil || b.Dir != tc.dir || b.Major != tc.major || b.Version != tc.version {
			t.Errorf("Find(%d) = %+v, %v; want %s, version %q", tc.major, b, err, tc.dir, tc.version)
		}
	}
	for _, major := range []int{16, 18} {
		_, err := s.Find(ctx, major)
		want := fmt.Sprintf("this backup is from PostgreSQL %d; it is not installed here", major)
		if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), want) ||
			!strings.Contains(err.Error(), fmt.Sprintf("install postgresql-%d or pass --pg-bin DIR", major)) {
			t.Errorf("Find(%d): %v; want ErrMissing saying %q and how to install it", major, err, want)
		}
	}
}

// A tree with compiled locales of its own gives them to the programs
// found there (LOCPATH in their environment); one without them leaves the
// machine's.
func TestFindLocales(t *testing.T) {
	root := t.TempDir()
	fakeInstall(t, root, 15, "postgres (PostgreSQL) 15.14")
	fakeInstall(t, root, 17, "postgres (PostgreSQL) 17.12")
	loc15 := filepath.Join(root, "15", "locale")
	if err := os.Mkdir(loc15, 0o755); err != nil {
		t.Fatal(err)
	}
	s := Search{Layouts: []string{filepath.Join(root, "%d/bin")}, Locales: filepath.Join(root, "%d/locale"), NoPath: true}
	ctx := context.Background()
	b, err := s.Find(ctx, 15)
	if env := b.Env([]string{"LOCPATH=/elsewhere"}); err != nil || b.Locales != loc15 || env[len(env)-1] != "LOCPATH="+loc15 {
		t.Errorf("Find(15) = %+v, %v, environment %q; want locales %s, LOCPATH last", b, err, env, loc15)
	}
	b, err = s.Find(ctx, 17)
	if env := b.Env([]string{"A=1"}); err != nil || b.Locales != "" || len(env) != 1 {
		t.Errorf("Find(17) = %+v, %v, environment %q; want no locales, the environment as it was", b, err, env)
	}
}

func TestFindExplicit(t *testing.T) {
	root := t.TempDir()
	d15 := fakeInstall(t, root, 15, "postgres (PostgreSQL) 15.14")
	ctx := context.Background()
	if b, err := (Search{Dir: d15}).Find(ctx, 15); err != nil || b.Dir != d15 {
		t.Errorf("Find(15) in %s = %+v, %v; want that directory", d15, b, err)
	}
	// The operator's directory is the only place looked at: another major
	// there is refused, even though the wanted one is elsewhere.
	d17 := fakeInstall(t, root, 17, "postgres (PostgreSQL) 17.12")
	_, err := Search{Dir: d15, Layouts: []string{filepath.Join(root, "%d/bin")}}.Find(ctx, 17)
	want := "this backup is from PostgreSQL 17, and " + d15 + " holds PostgreSQL 15, which cannot run it"
	if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v; want ErrMissing saying %q (not %s)", err, want, d17)
	}
	empty := t.TempDir()
	if _, err := (Search{Dir: empty}).Find(ctx, 17); !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "no pg_ctl") {
		t.Errorf("an empty --pg-bin: %v; want ErrMissing saying it has no pg_ctl", err)
	}
}

// A program that is not postgres is refused, however much it says.
func TestProbeHostile(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"postgres", "pg_ctl"} {
		os.WriteFile(filepath.Join(dir, p), []byte("#!/bin/sh\nhead -c 10000000 /dev/zero\n"), 0o755)
	}
	_, err := Probe(context.Background(), dir)
	if err == nil || !strings.Contains(err.Error(), "not a PostgreSQL version") || len(err.Error()) > 10000 {
		t.Errorf("got %.200v (%d bytes); want a short refusal", err, len(fmt.Sprint(err)))
	}
}

func TestPostmasterPID(t *testing.T) {
	for _, tc := range []struct {
		file string
		want int
	}{
		{"4242\n/var/lib/postgresql/data\n", 4242},
		{"  77  \n", 77},
		{"", 0},
		{"-3\n", 0},
		{"postgres\n4242\n", 0},
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "postmaster.pid"), []byte(tc.file), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := PostmasterPID(dir)
		if got != tc.want || (err == nil) != (tc.want > 0) {
			t.Errorf("PostmasterPID(%q) = %d, %v; want %d", tc.file, got, err, tc.want)
		}
	}
	if _, err := PostmasterPID(t.TempDir()); err == nil {
		t.Error("no postmaster.pid: no error")
	}
}
