package fault

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/restore"
	"github.com/clinicbox/clinicbox/appliance/signer"
)

// forgeBackups plays someone holding a copy of the drive and the public
// recipients: they write a complete, newest backup of their own (with a
// tar that plants a file) and mark it verified. Verification names it, and
// a restore refuses it before a byte of it is unpacked.
func (b *box) forgeBackups(t *testing.T) {
	tr := newTry(t, "backup forged by someone holding the drive (encrypted to the real recipients, signed by another key or unsigned)")
	dir := filepath.Join(t.TempDir(), "repo")
	if err := os.CopyFS(dir, os.DirFS(b.dir)); err != nil {
		t.Fatal(err)
	}
	genuine, err := archive.OpenFirstUse(dir)
	if err != nil {
		t.Fatal(err)
	}
	id := forgeBackup(t, dir, genuine.Info)
	rep, err := genuine.Verify(t.Context(), archive.VerifyOptions{Identities: b.k.ids})
	if err != nil {
		t.Fatal(err)
	}
	named := false
	for _, p := range rep.Problems {
		named = named || strings.Contains(p.String(), id) && strings.Contains(p.What, "not written by the trusted box")
	}
	if !named {
		t.Fatalf("verify: problems %v; want one saying backup %s is not the box's", rep.Problems, id)
	}
	pgdata := filepath.Join(t.TempDir(), "pgdata")
	_, err = restore.Run(t.Context(), restore.Options{Repo: genuine, Identities: b.k.ids, IdentityFile: b.k.file, PGData: pgdata, OwnerUID: -1, OwnerGID: -1})
	if !errors.Is(err, archive.ErrForged) {
		t.Fatalf("restore of the forged newest backup: %v; want it refused as forged", err)
	}
	if entries, _ := os.ReadDir(pgdata); len(entries) > 0 {
		t.Fatalf("restore left %d entries in the data directory; want nothing unpacked", len(entries))
	}
	tr.Outcome = "verify names the forged backup (not written by the trusted box); restore refuses it before unpacking anything"
}

// forgeBackup writes a backup into the repository at dir as an attacker
// could: with their own signing key, through the archive's own code, then
// puts the repository's identity back as it was. It returns the backup's ID.
func forgeBackup(t *testing.T, dir string, info archive.Info) string {
	t.Helper()
	orig, err := os.ReadFile(filepath.Join(dir, "clinicbox-repo.json"))
	if err != nil {
		t.Fatal(err)
	}
	forger := signer.FromSeed(bytes.Repeat([]byte{66}, 32))
	fake := info
	fake.Signer, fake.SignedFrom = forger.Public().String(), 0
	b, _ := json.Marshal(fake)
	os.WriteFile(filepath.Join(dir, "clinicbox-repo.json"), b, 0o644)
	repo, err := archive.Create(dir, fake, forger)
	if err != nil {
		t.Fatal(err)
	}
	w, err := repo.NewBackup(archive.NewID(time.Now().Add(time.Hour)), archive.NoCompress)
	if err != nil {
		t.Fatal(err)
	}
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for _, name := range []string{"PG_VERSION", "planted-by-forger"} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: 3, Typeflag: tar.TypeReg})
		tw.Write([]byte("15\n"))
	}
	tw.Close()
	for _, f := range []struct {
		open func() (io.WriteCloser, error)
		data []byte
	}{{func() (io.WriteCloser, error) { return w.Archive("base.tar", "") }, tb.Bytes()}, {w.Manifest, []byte(`{"PostgreSQL-Backup-Manifest-Version": 1, "Files": []}`)}} {
		fw, err := f.open()
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(f.data)
		if err := fw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	done, _, _ := repo.Backups()
	last := done[len(done)-1]
	// Newer than the newest genuine backup, and inside the WAL the
	// repository holds, so that a restore to latest would pick it.
	bk, err := w.Commit(archive.Backup{Timeline: last.EndTimeline, StartLSN: last.EndLSN, EndLSN: last.EndLSN + 0x28, EndTimeline: last.EndTimeline,
		Start: last.End, End: last.End.Add(time.Second), Compression: archive.NoCompress})
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.SetVerification(bk.ID, archive.Verification{Time: time.Now(), OK: true}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "clinicbox-repo.json"), orig, 0o644)
	return bk.ID
}
