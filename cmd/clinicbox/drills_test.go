package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clinicbox/clinicbox/drivers/postgres/pgbin"
	"github.com/clinicbox/clinicbox/drivers/testenv"
)

// The box finds each major version only in its own tree under -pg-dir,
// laid out as the image carries it, with the tree's compiled locales, and
// names the directory when a version is missing.
func TestBoxSearchFindsTheImagesTrees(t *testing.T) {
	const host15 = "/usr/lib/postgresql/15/bin"
	if _, err := os.Stat(filepath.Join(host15, "postgres")); err != nil {
		testenv.Skip(t, "no PostgreSQL 15 at "+host15)
	}
	pgDir := t.TempDir()
	tree := filepath.Join(pgDir, "pg15", "usr/lib/postgresql/15")
	if err := os.MkdirAll(tree, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(host15, filepath.Join(tree, "bin")); err != nil {
		t.Fatal(err)
	}
	locales := filepath.Join(pgDir, "pg15", "locale")
	if err := os.Mkdir(locales, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s := boxSearch(pgDir)
	b, err := s.Find(ctx, 15)
	if err != nil || b.Major != 15 || !strings.HasPrefix(b.Dir, pgDir) || b.Locales != locales {
		t.Fatalf("Find(15): got %+v, %v; want PostgreSQL 15 under %s with the locales in %s", b, err, pgDir, locales)
	}
	_, err = s.Find(ctx, 16)
	var miss *pgbin.MissingError
	if !errors.As(err, &miss) || !strings.Contains(err.Error(), pgDir) || !strings.Contains(err.Error(), "PostgreSQL 16") {
		t.Fatalf("Find(16): got %v; want a MissingError naming PostgreSQL 16 and %s", err, pgDir)
	}
}

func TestDrillConfigNeedsClinicctl(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	if c := drillConfig(dir, filepath.Join(dir, "clinicctl"), state, log); c != nil {
		t.Errorf("without clinicctl: got %+v; want nil (drills off)", c)
	}
	prog := filepath.Join(dir, "clinicctl")
	if err := os.WriteFile(prog, []byte("#!/bin/false\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := drillConfig(dir, prog, state+"/", log)
	// The state directory is root's alone; the drill's PostgreSQL, running
	// as its own user, must reach its data directory in the scratch.
	if c == nil || c.FetchProgram != prog || c.Scratch != filepath.Join(dir, "state-drill") || !c.Search.NoPath {
		t.Errorf("with clinicctl: got %+v; want it as FetchProgram, scratch beside the state, no PATH search", c)
	}
}
