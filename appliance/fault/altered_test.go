package fault

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/clinicbox/clinicbox/appliance/archive"
)

// fileKind names the kind of a repository file, or "" for files that are
// advisory (state, verification results, locks) and not checked.
func fileKind(rel string) string {
	base := filepath.Base(rel)
	switch {
	case strings.Contains(rel, ".incomplete-"):
		return "" // not a backup: nothing trusts it
	case rel == "clinicbox-repo.json":
		return "repository identity"
	case strings.HasSuffix(base, ".partial.age"):
		return "partial WAL segment"
	case strings.HasPrefix(rel, "wal/") && strings.HasSuffix(base, ".history.age"):
		return "timeline history"
	case strings.HasPrefix(rel, "wal/") && strings.HasSuffix(base, ".age"):
		return "WAL segment"
	case base == "backup.json", base == "backup.json.age", base == "backup.sig":
		return "backup metadata (" + base + ")"
	case strings.HasPrefix(base, "backup_manifest"):
		return "backup manifest"
	case strings.HasPrefix(rel, "backups/") && strings.HasSuffix(base, ".age"):
		return "base backup archive"
	}
	return ""
}

// named is how verification names a problem in the file.
func named(rel string) string {
	base := filepath.Base(rel)
	switch {
	case strings.HasPrefix(rel, "wal/"):
		return base[:24]
	case strings.HasPrefix(base, "backup.json"), base == "backup.sig":
		return filepath.Base(filepath.Dir(rel))
	}
	return base
}

// alterEveryKind flips a byte in, or truncates, one file of every kind in
// a copy of the repository, as if it had been altered while the drive was
// offsite, and checks that verification fails and names it.
func (b *box) alterEveryKind(t *testing.T) {
	first := map[string]string{}
	filepath.Walk(b.dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() || fi.Size() == 0 {
			return nil
		}
		rel, _ := filepath.Rel(b.dir, p)
		if complete, ok := strings.CutSuffix(p, ".partial.age"); ok && fileExists(complete+".age") {
			return nil // left by a kill between storing the segment and removing its partial file: never read
		}
		if k := fileKind(rel); k != "" && first[k] == "" {
			first[k] = rel
		}
		return nil
	})
	var kinds []string
	for k := range first {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	if len(kinds) < 6 {
		t.Fatalf("got file kinds %v; want at least 6 to damage", kinds)
	}
	for _, k := range kinds {
		for _, damage := range []string{"flip", "truncate"} {
			t.Run(damage+" "+k, func(t *testing.T) {
				fault := "repository file altered while offsite (a byte flipped)"
				if damage == "truncate" {
					fault = "repository file truncated"
				}
				tr := newTry(t, fault)
				dir := filepath.Join(t.TempDir(), "repo")
				if err := os.CopyFS(dir, os.DirFS(b.dir)); err != nil {
					t.Fatal(err)
				}
				rel := first[k]
				damageFile(t, filepath.Join(dir, rel), damage)
				repo, err := archive.OpenFirstUse(dir)
				if err != nil {
					tr.Outcome = "refused to open the repository; verify names what is wrong"
					return
				}
				rep, err := repo.Verify(t.Context(), archive.VerifyOptions{Identities: b.k.ids})
				if err != nil {
					t.Fatalf("verify: %v", err)
				}
				if k == "repository identity" && !rep.OK() {
					tr.Outcome = "verify fails (the identity no longer matches the stored files)"
					return
				}
				for _, p := range rep.Problems {
					if strings.Contains(p.String(), named(rel)) {
						tr.Outcome = "verify fails and names the file"
						return
					}
				}
				t.Errorf("%s %s: got problems %v; want one naming %s", damage, rel, rep.Problems, named(rel))
			})
		}
	}
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
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
