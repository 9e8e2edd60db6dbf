package backup

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
)

// streamedRepo makes a repository with a backup and streamed WAL: complete
// segments and a partial one.
func streamedRepo(t *testing.T) (string, []age.Identity) {
	t.Helper()
	c := pgtest.New(t, pgtest.Options{})
	ctx := context.Background()
	if err := c.PgbenchInit(ctx, 2); err != nil {
		t.Fatal(err)
	}
	recip, ids := testKey(t)
	dir := filepath.Join(t.TempDir(), "repo")
	s := startStream(t, StreamOptions{DB: c.URL(), Repo: dir, Slot: "clinicbox_drive", Recipients: []string{recip}, Signer: testSigner})
	if _, err := Take(ctx, Options{DB: c.URL(), Repo: dir, Recipients: []string{recip}, Signer: testSigner}); err != nil {
		t.Fatal(err)
	}
	if err := c.Pgbench(ctx, "-t", "3000"); err != nil {
		t.Fatal(err)
	}
	currentLSN(t, c, true)
	c.MustExec(t, "CREATE TABLE tail AS SELECT 1 AS x")
	s.waitFor(t, 1, currentLSN(t, c, false))
	s.stop(t)
	assertVerifies(t, dir, ids)
	return dir, ids
}

func assertVerifies(t *testing.T, dir string, ids []age.Identity) *archive.Report {
	t.Helper()
	repo, err := archive.OpenFirstUse(dir)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := repo.Verify(context.Background(), archive.VerifyOptions{Identities: ids})
	if err != nil || !rep.OK() {
		t.Fatalf("repository does not verify: %v %v", err, rep.Problems)
	}
	return rep
}

// assertNamed verifies a damaged repository and wants a problem naming obj.
func assertNamed(t *testing.T, dir string, ids []age.Identity, obj string) {
	t.Helper()
	repo, err := archive.OpenFirstUse(dir)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := repo.Verify(context.Background(), archive.VerifyOptions{Identities: ids})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Problems {
		if strings.Contains(p.String(), obj) {
			return
		}
	}
	t.Errorf("got problems %v; want one naming %s", rep.Problems, obj)
}

// Every kind of repository file, flipped or truncated, is detected and
// named; so is a missing WAL segment.
func TestCorruptionIsDetectedAndNamed(t *testing.T) {
	dir, ids := streamedRepo(t)
	var files []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && fi.Size() > 0 && (strings.HasSuffix(p, ".age") || strings.HasSuffix(p, "backup.json")) {
			files = append(files, p)
		}
		return nil
	})
	kinds := map[string]int{}
	for _, f := range files {
		kinds[kindOf(f)]++
	}
	for _, k := range []string{"segment", "partial", "archive", "manifest", "metadata"} {
		if kinds[k] == 0 {
			t.Fatalf("test repository lacks a %s file (have %v)", k, kinds)
		}
	}
	if kinds["segment"] < 3 {
		t.Fatalf("want at least 3 complete segments; have %d", kinds["segment"])
	}
	for _, f := range files {
		rel, _ := filepath.Rel(dir, f)
		for _, damage := range []string{"flip", "truncate"} {
			t.Run(damage+"/"+rel, func(t *testing.T) {
				c := copyRepo(t, dir)
				damageFile(t, filepath.Join(c, rel), damage)
				assertNamed(t, c, ids, objectName(rel))
			})
		}
	}
	t.Run("missing segment", func(t *testing.T) {
		c := copyRepo(t, dir)
		segs, _ := filepath.Glob(filepath.Join(c, "wal", "00000001", "*.zst.age"))
		victim := segs[len(segs)/2]
		if err := os.Remove(victim); err != nil {
			t.Fatal(err)
		}
		assertNamed(t, c, ids, filepath.Base(victim)[:24])
	})
}

func copyRepo(t *testing.T, dir string) string {
	t.Helper()
	c := filepath.Join(t.TempDir(), "repo")
	if out, err := exec.Command("cp", "-a", dir, c).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return c
}

func kindOf(path string) string {
	switch {
	case strings.HasSuffix(path, ".partial.age"):
		return "partial"
	case strings.Contains(path, "backup.json"):
		return "metadata"
	case strings.Contains(path, "backup_manifest"):
		return "manifest"
	case strings.Contains(path, "/backups/"):
		return "archive"
	}
	return "segment"
}

// objectName is how a verification problem names a file.
func objectName(rel string) string {
	base := filepath.Base(rel)
	if strings.HasPrefix(rel, "wal/") {
		return base[:24]
	}
	if strings.HasPrefix(base, "backup.json") {
		return filepath.Base(filepath.Dir(rel))
	}
	return base
}

func damageFile(t *testing.T, path, how string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	switch how {
	case "flip":
		data[len(data)/2] ^= 0x40
	case "truncate":
		data = data[:len(data)/2]
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Streaming from a standby that is promoted follows the new timeline and
// stores its history file; the result verifies.
func TestStreamFollowsPromotion(t *testing.T) {
	primary := pgtest.New(t, pgtest.Options{})
	ctx := context.Background()
	standby, err := primary.StartStandby(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(standby.Stop)
	recip, ids := testKey(t)
	dir := filepath.Join(t.TempDir(), "repo")
	s := startStream(t, StreamOptions{DB: standby.URL(), Repo: dir, Slot: "clinicbox_drive", Recipients: []string{recip}, Signer: testSigner})
	primary.MustExec(t, "CREATE TABLE before_promotion AS SELECT generate_series(1, 50000) AS x")
	lsn := currentLSN(t, primary, true)
	s.waitFor(t, 1, lsn-1)
	if err := standby.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	standby.MustExec(t, "CREATE TABLE after_promotion AS SELECT generate_series(1, 50000) AS x")
	s.waitFor(t, 2, currentLSN(t, standby, false))
	s.stop(t)
	repo, err := archive.OpenFirstUse(dir)
	if err != nil {
		t.Fatal(err)
	}
	tls, err := repo.Timelines()
	if err != nil {
		t.Fatal(err)
	}
	if len(tls) != 2 || tls[1].TLI != 2 || !tls[1].HasHistory {
		t.Fatalf("got timelines %+v; want 1 and 2 with a history file", tls)
	}
	if h, err := repo.ReadHistory(2, ids); err != nil || !strings.Contains(string(h), "1\t") {
		t.Errorf("history of timeline 2 = %q, %v", h, err)
	}
	assertVerifies(t, dir, ids)
}
