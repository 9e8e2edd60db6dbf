package fault

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
)

// A base backup whose tar was made hostile (a drive altered while offsite,
// or a vault that lies) is refused entry by entry when it is restored:
// nothing lands outside the data directory.
func TestHostileTarEntries(t *testing.T) {
	k := newKey(t)
	top := t.TempDir()
	outside := filepath.Join(top, "outside") // where an escape would land
	os.Mkdir(outside, 0o755)
	repo, err := archive.Create(filepath.Join(top, "repo"), archive.Info{SystemID: "7300000000000000001",
		SegmentSize: 16 << 20, ServerVersion: 150000, Recipients: []string{k.recipient}}, testSigner)
	if err != nil {
		t.Fatal(err)
	}
	reg := func(name string) *tar.Header {
		return &tar.Header{Name: name, Typeflag: tar.TypeReg, Size: 1, Mode: 0o600}
	}
	link := func(name, to string) *tar.Header {
		return &tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: to}
	}
	tests := []struct {
		name    string
		entries []*tar.Header
		want    string
	}{
		{"dot-dot", []*tar.Header{reg("../outside/evil")}, "escapes"},
		{"nested dot-dot", []*tar.Header{reg("base/1/../../../outside/evil")}, "escapes"},
		{"absolute path", []*tar.Header{reg(filepath.Join(outside, "evil"))}, "absolute"},
		{"absolute symlink out, then a file through it", []*tar.Header{link("pg_wal", outside), reg("pg_wal/evil")}, "outside"},
		{"relative symlink out", []*tar.Header{link("base/x", "../../outside")}, "outside"},
		{"file through a planted symlink", []*tar.Header{link("d", "."), reg("d/evil")}, "symlink"},
		{"character device", []*tar.Header{{Name: "dev", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}}, "device"},
		{"named pipe", []*tar.Header{{Name: "p", Typeflag: tar.TypeFifo}}, "pipe"},
		{"hard link out", []*tar.Header{{Name: "h", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"}}, "hard link"},
		{"1 TB file", []*tar.Header{{Name: "big", Typeflag: tar.TypeReg, Size: 1 << 40, Mode: 0o600}}, "larger"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTry(t, "tar entries escaping the data directory (restore of a hostile base backup)")
			b := hostileBackup(t, repo, tt.entries)
			pgdata := filepath.Join(top, "restore-"+strings.ReplaceAll(tt.name, " ", "-"), "pgdata")
			err := repo.Extract(b, pgdata, archive.ExtractOptions{Identities: k.ids})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v; want a refusal mentioning %q", err, tt.want)
			}
			if ents, _ := os.ReadDir(outside); len(ents) > 0 {
				t.Fatalf("an entry escaped the data directory: %s", ents[0].Name())
			}
			tr.Outcome = "restore refused at the first hostile entry, naming it and why; nothing written outside the data directory"
		})
	}
}

// hostileBackup stores a backup whose base tar holds entries, as a
// repository on an altered drive could.
func hostileBackup(t *testing.T, repo *archive.Repo, entries []*tar.Header) *archive.Backup {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg && h.Size == 1 {
			tw.Write([]byte("x"))
		}
	}
	tw.Flush() // a 1 TB entry's header stands alone: its body never comes
	w, err := repo.NewBackup(archive.NewID(time.Now()), archive.NoCompress)
	if err != nil {
		t.Fatal(err)
	}
	store := func(fw io.WriteCloser, err error, data []byte) {
		if err == nil {
			fw.Write(data)
			err = fw.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	fw, err := w.Archive("base.tar", "")
	store(fw, err, buf.Bytes())
	fw, err = w.Manifest()
	store(fw, err, []byte("{}"))
	b, err := w.Commit(archive.Backup{Label: "hostile", Start: time.Now(), End: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
