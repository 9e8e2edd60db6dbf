package main

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/clinicbox/clinicbox/appliance/restore"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgbin"
	"github.com/clinicbox/clinicbox/drivers/testenv"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The trees the image carries run a PostgreSQL server of each pinned major
// version on this machine's architecture with nothing of the machine's
// own PostgreSQL: a cluster made by the machine's initdb starts on the
// tree's programs, loads amcheck and checks an index, reads a time zone
// abbreviation file and uses a text search dictionary module. The tree
// keeps no JIT and no initdb.
func TestPGTreesRunAServer(t *testing.T) {
	testenv.NeedRoot(t) // the server runs as the postgres user
	trees, uid, gid := builtPGTrees(t, runtime.GOARCH)
	ctx := context.Background()
	checkTreeContents(t, trees)
	for _, major := range trees.Majors {
		t.Run(strconv.Itoa(major), func(t *testing.T) {
			b, err := treeSearch(trees).Find(ctx, major)
			if err != nil || !strings.HasPrefix(b.Dir, trees.Dir) {
				t.Fatalf("Find(%d): got %+v, %v; want the tree's programs", major, b, err)
			}
			runServer(t, b, uid, gid)
		})
	}
}

// treeSearch finds the programs and locales of the trees as the box does
// (cmd/clinicbox's boxSearch).
func treeSearch(trees *pgTrees) pgbin.Search {
	return pgbin.Search{Layouts: []string{filepath.Join(trees.Dir, "pg%d", "usr/lib/postgresql/%d/bin")},
		Locales: filepath.Join(trees.Dir, "pg%d", pgLocaleDir), NoPath: true}
}

// builtPGTrees builds the PostgreSQL trees the image carries for arch into
// a temporary directory the postgres user can run them from, checks that
// both pinned majors are there, and returns them with the user the servers
// run as.
func builtPGTrees(t *testing.T, arch string) (trees *pgTrees, uid, gid int) {
	t.Helper()
	testenv.NeedCommand(t, "dpkg-deb")
	testenv.NeedCommand(t, "patchelf")
	uid, gid, err := pgbin.ServerUser()
	if err != nil {
		testenv.Skip(t, err.Error())
	}
	root := moduleRoot(t)
	lock, err := os.Open(filepath.Join(root, pgLockFile))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	out := testenv.SharedDir(t) // the postgres user runs the programs
	// The loader path is absolute: here the tree's own place.
	trees, err = buildPGTrees(context.Background(), lock, arch, filepath.Join(root, "_work", "debs"), out, filepath.Join(out, "lib"))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(trees.Majors) != "[15 17]" {
		t.Errorf("got majors %v; want [15 17]", trees.Majors)
	}
	return trees, uid, gid
}

// checkTreeContents checks what the trees leave out and that the time
// zone data is there.
func checkTreeContents(t *testing.T, trees *pgTrees) {
	t.Helper()
	if b, err := os.ReadFile(filepath.Join(trees.Zoneinfo, "America/New_York")); err != nil || !strings.HasPrefix(string(b), "TZif") {
		t.Errorf("zoneinfo/America/New_York: %v; want a TZif file", err)
	}
	var size int64
	filepath.WalkDir(trees.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if strings.HasPrefix(name, "llvmjit") || name == "initdb" || name == "bitcode" || name == "psql" || name == "doc" {
			t.Errorf("the tree carries %s", p)
		}
		if fi, err := d.Info(); err == nil && !d.IsDir() {
			size += fi.Size()
		}
		return nil
	})
	t.Logf("trees: %.1f MB uncompressed", float64(size)/1e6)
	for _, m := range trees.Majors {
		t.Logf("pg%d's locales: %d bytes uncompressed", m, testenv.DirBytes(filepath.Join(trees.Dir, fmt.Sprint("pg", m), pgLocaleDir)))
	}
}

// hostInitdb is the machine's initdb of a major version (the tree has none).
func hostInitdb(t *testing.T, major int) string {
	for _, dir := range []string{fmt.Sprintf("/usr/lib/postgresql/%d/bin", major), filepath.Join(pgbin.TestTree(), fmt.Sprintf("usr/lib/postgresql/%d/bin", major))} {
		if p := filepath.Join(dir, "initdb"); fileExists(p) {
			return p
		}
	}
	testenv.Skip(t, fmt.Sprintf("no initdb of PostgreSQL %d on this machine (make setup builds 17)", major))
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// runServer makes a cluster with the machine's initdb and runs it on b,
// with the tree's own locales only (LOCPATH): the cluster's databases
// collate by en_US.UTF-8, and databases in the other locales the tree
// carries are made and sort by their locale. A database made meanwhile in
// a locale the tree lacks (de_DE.UTF-8, a copy of en_US.UTF-8 under that
// name where it was made) cannot be connected to, and the error names it.
func runServer(t *testing.T, b pgbin.Bin, uid, gid int) {
	if b.Locales == "" {
		t.Fatalf("%+v: no locales with the programs; want the tree's", b)
	}
	dir, pgdata := initCluster(t, b, uid, gid)
	withLacking := b
	withLacking.Locales = lackingLocales(t, b.Locales, dir, uid, gid)
	conn, srv := startTreeServer(t, withLacking, pgdata, dir, uid, gid)
	for _, db := range []string{"c_utf8 LOCALE 'C.UTF-8'", "es_us LOCALE 'es_US.UTF-8'", "en_gb LOCALE 'en_GB.UTF-8'", "lacking LOCALE 'de_DE.UTF-8'"} {
		if _, err := conn.Exec(context.Background(), "CREATE DATABASE "+db+" TEMPLATE template0"); err != nil {
			t.Fatalf("CREATE DATABASE %s: %v", db, err)
		}
	}
	conn.Close(context.Background())
	srv.Stop()
	conn, srv = startTreeServer(t, b, pgdata, dir, uid, gid)
	defer srv.Stop()
	defer conn.Close(context.Background())
	checkServer(t, conn, srv, b.Major)
	checkCollations(t, srv)
}

// initCluster makes a cluster with the machine's initdb of b's major
// version and the locale en_US.UTF-8 from b's locales, in a directory the
// server's user owns.
func initCluster(t *testing.T, b pgbin.Bin, uid, gid int) (dir, pgdata string) {
	t.Helper()
	initdb := hostInitdb(t, b.Major)
	dir = testenv.SharedDir(t)
	os.Chown(dir, uid, gid)
	pgdata = filepath.Join(dir, "data")
	cmd := exec.Command(initdb, "-D", pgdata, "-U", "postgres", "--locale=en_US.UTF-8", "-E", "UTF8")
	cmd.Env = b.Env(os.Environ())
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	return dir, pgdata
}

// lackingLocales is a directory of locales beside dir: those in locales,
// and de_DE.utf8, a copy of en_US.utf8 under a name the trees lack.
func lackingLocales(t *testing.T, locales, dir string, uid, gid int) string {
	t.Helper()
	out := filepath.Join(dir, "locales")
	if err := copyTree(locales, locales, out); err != nil {
		t.Fatal(err)
	}
	if err := copyTree(locales, filepath.Join(locales, "en_US.utf8"), filepath.Join(out, "de_DE.utf8")); err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(out, func(p string, _ fs.DirEntry, _ error) error { return os.Chown(p, uid, gid) })
	return out
}

// startTreeServer starts the cluster on b and connects to its postgres
// database.
func startTreeServer(t *testing.T, b pgbin.Bin, pgdata, dir string, uid, gid int) (*pgx.Conn, *restore.Server) {
	t.Helper()
	ctx := context.Background()
	srv, err := restore.StartServerWith(ctx, restore.ServerConfig{PGData: pgdata, SockDir: dir, UID: uid, GID: gid, Bin: b})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := srv.Connect(ctx, "postgres")
	if err != nil {
		srv.Stop()
		t.Fatalf("connect to postgres (en_US.UTF-8): %v\n%s", err, srv.LogTail(2000))
	}
	return conn, srv
}

// checkServer runs queries that need the tree's modules and share files.
func checkServer(t *testing.T, conn *pgx.Conn, srv *restore.Server, major int) {
	ctx := context.Background()
	for _, q := range []string{
		"CREATE EXTENSION amcheck",
		"SELECT bt_index_check('pg_class_oid_index', true)",
		"SET timezone_abbreviations = 'Default'",
		"SELECT to_tsvector('english', 'running drills')",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Errorf("%s: %v\n%s", q, err, srv.LogTail(2000))
		}
	}
	var v string
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&v); err != nil || !strings.HasPrefix(v, strconv.Itoa(major)+".") {
		t.Errorf("server_version: got %q, %v; want %d.x", v, err, major)
	}
}

// checkCollations connects to each database and sorts by its collation:
// the locales the tree carries order letters as their language does
// (C.UTF-8 by code point), and the one it lacks is named when a
// connection to its database fails.
func checkCollations(t *testing.T, srv *restore.Server) {
	ctx := context.Background()
	for db, want := range map[string]string{"postgres": "a A b B", "en_gb": "a A b B", "es_us": "a A b B", "c_utf8": "A B a b"} {
		conn, err := srv.Connect(ctx, db)
		if err != nil {
			t.Errorf("connect to %s: %v", db, err)
			continue
		}
		var got string
		err = conn.QueryRow(ctx, "SELECT string_agg(x, ' ' ORDER BY x) FROM unnest(ARRAY['b', 'B', 'a', 'A']) x").Scan(&got)
		conn.Close(ctx)
		if err != nil || got != want {
			t.Errorf("%s: sorted %q, %v; want %q", db, got, err, want)
		}
	}
	_, err := srv.Connect(ctx, "lacking")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || !strings.Contains(pgErr.Detail, "de_DE.UTF-8") {
		t.Errorf("connect to a database in de_DE.UTF-8: got %v; want it refused with the locale named", err)
	}
}

// The Pi's trees (arm64) assemble on this machine with every library the
// programs and modules need found in the pinned packages, and the
// programs point at the tree's own arm64 loader. (They cannot run here.)
func TestPGTreesForThePiAssemble(t *testing.T) {
	testenv.NeedCommand(t, "dpkg-deb")
	testenv.NeedCommand(t, "patchelf")
	root := moduleRoot(t)
	lock, err := os.Open(filepath.Join(root, pgLockFile))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	out := t.TempDir()
	trees, err := buildPGTrees(context.Background(), lock, "arm64", filepath.Join(root, "_work", "debs"), out, pgTreeRoot)
	if err != nil {
		t.Fatal(err)
	}
	for _, major := range []int{15, 17} {
		prog := filepath.Join(trees.Dir, fmt.Sprintf("pg%d/usr/lib/postgresql/%d/bin/postgres", major, major))
		f, err := elf.Open(prog)
		if err != nil {
			t.Fatal(err)
		}
		interp := interpreter(f)
		f.Close()
		if want := fmt.Sprintf("%s/pg%d/lib/ld-linux-aarch64.so.1", pgTreeRoot, major); f.Machine != elf.EM_AARCH64 || interp != want {
			t.Errorf("pg%d postgres: got %v with loader %q; want arm64 with %s", major, f.Machine, interp, want)
		}
		if !fileExists(filepath.Join(trees.Dir, fmt.Sprintf("pg%d/lib/ld-linux-aarch64.so.1", major))) {
			t.Errorf("pg%d: no arm64 loader in the tree", major)
		}
	}
}
