package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clinicbox/clinicbox/drivers/testenv"
)

// buildDeb makes a package whose files are those of files (a path under
// usr/lib/locale, its content) and links (a path, its target).
func buildDeb(t *testing.T, files, links map[string]string) string {
	t.Helper()
	testenv.NeedCommand(t, "dpkg-deb")
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	control := "Package: locales-test\nVersion: 1\nArchitecture: all\nMaintainer: clinicbox\nDescription: test\n"
	if err := os.MkdirAll(filepath.Join(root, "DEBIAN"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "DEBIAN", "control"), []byte(control), 0o644); err != nil {
		t.Fatal(err)
	}
	for p, content := range files {
		p = filepath.Join(root, debLocaleRoot, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for p, target := range links {
		p = filepath.Join(root, debLocaleRoot, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	deb := filepath.Join(dir, "test.deb")
	if out, err := exec.Command("dpkg-deb", "--root-owner-group", "-Zgzip", "--build", root, deb).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --build: %v\n%s", err, out)
	}
	return deb
}

// Only the listed locales are copied, each file the content Debian's
// links lead to (through other locales' directories, link after link);
// a link out of usr/lib/locale or in a circle is refused with its name.
func TestExtractLocales(t *testing.T) {
	ctx := context.Background()
	deb := buildDeb(t, map[string]string{
		"aa_DJ.utf8/LC_COLLATE":             "collate",
		"en_US.utf8/LC_TIME":                "time",
		"de_DE.utf8/LC_CTYPE":               "not wanted",
		"en_AG/LC_MESSAGES/SYS_LC_MESSAGES": "messages",
	}, map[string]string{
		"en_GB.utf8/LC_COLLATE":                  "../en_US.utf8/LC_COLLATE",
		"en_US.utf8/LC_COLLATE":                  "../aa_DJ.utf8/LC_COLLATE",
		"en_US.utf8/LC_MESSAGES/SYS_LC_MESSAGES": "../../en_AG/LC_MESSAGES/SYS_LC_MESSAGES",
	})
	dest := t.TempDir()
	if err := extractLocales(ctx, deb, dest); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"en_US.utf8/LC_COLLATE": "collate", "en_GB.utf8/LC_COLLATE": "collate",
		"en_US.utf8/LC_TIME": "time", "en_US.utf8/LC_MESSAGES/SYS_LC_MESSAGES": "messages"} {
		fi, lerr := os.Lstat(filepath.Join(dest, p))
		b, err := os.ReadFile(filepath.Join(dest, p))
		if err != nil || lerr != nil || !fi.Mode().IsRegular() || string(b) != want {
			t.Errorf("%s: %q, %v; want a file holding %q", p, b, err, want)
		}
	}
	for _, p := range []string{"de_DE.utf8", "aa_DJ.utf8", "en_AG"} {
		if fileExists(filepath.Join(dest, p)) {
			t.Errorf("%s copied; want only drillLocales", p)
		}
	}
	for name, links := range map[string]map[string]string{
		"outside": {"en_US.utf8/LC_CTYPE": "../../../../etc/passwd"},
		"circle":  {"en_US.utf8/LC_CTYPE": "../es_US.utf8/LC_CTYPE", "es_US.utf8/LC_CTYPE": "../en_US.utf8/LC_CTYPE"},
	} {
		err := extractLocales(ctx, buildDeb(t, nil, links), t.TempDir())
		if err == nil || !strings.Contains(err.Error(), "LC_CTYPE") {
			t.Errorf("%s: got %v; want the link refused with its name", name, err)
		}
	}
}

// The locales must come from the glibc the tree runs: a lock whose
// locales-all is of another version than its libc6 is refused, as is one
// that pins no locales.
func TestSplitLocalePinsChecksTheGlibc(t *testing.T) {
	pins := []debPin{{Major: 15, Package: "libc6", Version: "2.36-9"}, {Major: 15, Package: "postgresql-15", Version: "15.1"},
		{Major: 15, Package: "libc-bin", Version: "2.36-9"}, {Major: 15, Package: "locales-all", Version: "2.36-9"}}
	tree, locales, err := splitLocalePins(pins)
	if err != nil || len(tree) != 2 || len(locales) != 2 {
		t.Fatalf("got tree %v, locales %v, %v; want libc6 and postgresql-15 apart from the two locale packages", tree, locales, err)
	}
	pins[3].Version = "2.41-12"
	if _, _, err := splitLocalePins(pins); err == nil || !strings.Contains(err.Error(), "2.41-12") || !strings.Contains(err.Error(), "2.36-9") {
		t.Errorf("locales-all 2.41 with libc6 2.36: got %v; want both versions named", err)
	}
	if _, _, err := splitLocalePins(pins[:2]); err == nil || !strings.Contains(err.Error(), "locale packages") {
		t.Errorf("no locale packages: got %v; want them asked for", err)
	}
}
