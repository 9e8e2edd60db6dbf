package archive

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type entry struct {
	name, link string
	typ        byte
	body       string
	size       int64
}

func tarOf(t *testing.T, entries ...entry) *bytes.Buffer {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o600, Size: int64(len(e.body))}
		if e.size != 0 {
			h.Size = e.size
		}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Flush() // a hostile archive need not be well-ended
	return &b
}

// Hostile archives are refused before anything escapes the directory.
func TestUntarRefusesHostileEntries(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []entry
		want    string
	}{
		{"dot-dot", []entry{{name: "../evil", typ: tar.TypeReg, body: "x"}}, "escapes"},
		{"nested dot-dot", []entry{{name: "base/../../evil", typ: tar.TypeReg, body: "x"}}, "escapes"},
		{"absolute", []entry{{name: "/etc/evil", typ: tar.TypeReg, body: "x"}}, "absolute"},
		{"outward symlink", []entry{{name: "pg_wal", typ: tar.TypeSymlink, link: "/etc"}}, "outside"},
		{"relative outward symlink", []entry{{name: "base/x", typ: tar.TypeSymlink, link: "../../.."}}, "outside"},
		{"write through symlink", []entry{{name: "d", typ: tar.TypeSymlink, link: "."}, {name: "d/f", typ: tar.TypeReg, body: "x"}}, "symlink"},
		// Each link looks local on its own; resolved one after the other,
		// sub/.. is the directory's parent.
		{"chain of symlinks", []entry{{name: "sub", typ: tar.TypeSymlink, link: "."}, {name: "pg_wal", typ: tar.TypeSymlink, link: "sub/../evil"}}, "outside"},
		{"file through a chain of symlinks", []entry{{name: "sub", typ: tar.TypeSymlink, link: "."}, {name: "up", typ: tar.TypeSymlink, link: "sub/.."},
			{name: "up/evil", typ: tar.TypeReg, body: "x"}}, "symlink"},
		{"tablespace link not in backup.json", []entry{{name: "pg_tblspc/16390", typ: tar.TypeSymlink, link: "/tmp"}}, "outside"},
		{"device", []entry{{name: "dev", typ: tar.TypeChar}}, "device"},
		{"fifo", []entry{{name: "p", typ: tar.TypeFifo}}, "pipe"},
		{"hard link", []entry{{name: "h", typ: tar.TypeLink, link: "/etc/passwd"}}, "hard link"},
		{"huge file", []entry{{name: "big", typ: tar.TypeReg, size: 1 << 40}}, "larger"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			top := t.TempDir()
			dir := filepath.Join(top, "pgdata")
			os.Mkdir(dir, 0o700)
			err := untar(tarOf(t, tc.entries...), openRoot(t, dir), map[string]string{"pg_tblspc/16385": "../pg_tblspc_data/16385"})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v; want a refusal mentioning %q", err, tc.want)
			}
			escaped, _ := filepath.Glob(filepath.Join(top, "evil"))
			if len(escaped) > 0 {
				t.Errorf("a file escaped: %v", escaped)
			}
		})
	}
}

// A tablespace link is rewritten to where the tablespace is restored.
func TestUntarTablespaceLink(t *testing.T) {
	dir := t.TempDir()
	newLoc := t.TempDir()
	err := untar(tarOf(t, entry{name: "pg_tblspc/16385", typ: tar.TypeSymlink, link: "/srv/old/ts"},
		entry{name: "PG_VERSION", typ: tar.TypeReg, body: "15\n"}), openRoot(t, dir), map[string]string{"pg_tblspc/16385": newLoc})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.Readlink(filepath.Join(dir, "pg_tblspc/16385")); got != newLoc {
		t.Errorf("tablespace link -> %q; want %q", got, newLoc)
	}
}

func openRoot(t *testing.T, dir string) *os.Root {
	t.Helper()
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// A symlink already in the directory before the restore (planted there, or
// left by something else) leads no entry out of it, whether the entry
// names it as a parent or as the file itself.
func TestUntarPlantedSymlink(t *testing.T) {
	for _, tc := range []struct {
		name, planted string
		entries       []entry
	}{
		{"as a parent", "base", []entry{{name: "base/1/evil", typ: tar.TypeReg, body: "x"}}},
		{"as a directory entry", "base", []entry{{name: "base", typ: tar.TypeDir}, {name: "base/evil", typ: tar.TypeReg, body: "x"}}},
		{"as the file", "PG_VERSION", []entry{{name: "PG_VERSION", typ: tar.TypeReg, body: "x"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			top := t.TempDir()
			dir, outside := filepath.Join(top, "pgdata"), filepath.Join(top, "outside")
			os.Mkdir(dir, 0o700)
			os.Mkdir(outside, 0o700)
			target := outside
			if tc.planted == "PG_VERSION" {
				target = filepath.Join(outside, "evil")
			}
			if err := os.Symlink(target, filepath.Join(dir, tc.planted)); err != nil {
				t.Fatal(err)
			}
			err := untar(tarOf(t, tc.entries...), openRoot(t, dir), nil)
			if err == nil {
				t.Fatalf("got no error; want a refusal")
			}
			if ents, _ := os.ReadDir(outside); len(ents) > 0 {
				t.Errorf("an entry escaped through the planted symlink: %s", ents[0].Name())
			}
		})
	}
}
