package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/clinicbox/clinicbox/drivers/testenv"
)

// These tests check the project's config.json: the gokrazy instance the
// images are built from.

const (
	clinicboxPkg = boxPackage
	clinicctlPkg = "github.com/clinicbox/clinicbox/cmd/clinicctl"
)

func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}
	return root
}

func readInstance(t *testing.T) *instance {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot(t), "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := parseInstance(b)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func TestConfigInstance(t *testing.T) {
	in := readInstance(t)
	if in.Hostname != "clinicbox" {
		t.Errorf("got Hostname %q; want clinicbox", in.Hostname)
	}
	// clinicctl serves a drill's restore_command (wal-fetch); it is
	// never started as a service.
	if got := strings.Join(in.Packages, " "); got != clinicboxPkg+" "+clinicctlPkg {
		t.Errorf("got Packages %q; want %s %s", got, clinicboxPkg, clinicctlPkg)
	}
	if pc := in.PackageConfig[clinicctlPkg]; !pc.DontStart {
		t.Errorf("got PackageConfig[clinicctl] %+v; want DontStart", pc)
	}
	pc, ok := in.PackageConfig[clinicboxPkg]
	if !ok || !pc.WaitForClock {
		t.Errorf("got PackageConfig[clinicbox] %+v; want WaitForClock true (the Pi boots in 1970)", pc)
	}
	if in.GokrazyPackages == nil {
		t.Errorf("GokrazyPackages unset; want the base services listed explicitly")
	}
	for pkg := range in.PackageConfig {
		if !slices.Contains(in.Packages, pkg) && !slices.Contains(deref2(in.GokrazyPackages), pkg) {
			t.Errorf("PackageConfig names %s, which is not in Packages or GokrazyPackages", pkg)
		}
	}
	for name, p := range map[string]*string{"KernelPackage": in.KernelPackage, "FirmwarePackage": in.FirmwarePackage, "EEPROMPackage": in.EEPROMPackage} {
		if p == nil || *p == "" {
			t.Errorf("%s unset; want the Pi's package named in config.json", name)
		}
	}
}

// TestConfigNoPassword checks that no password is committed: config.json
// names none, and the file the build keeps it in is ignored by git.
func TestConfigNoPassword(t *testing.T) {
	root := moduleRoot(t)
	in := readInstance(t)
	if in.Update != nil && (in.Update.HTTPPassword != "" || in.Update.NoPassword) {
		t.Errorf("config.json: Update %+v; want no HTTPPassword and no NoPassword", in.Update)
	}
	for _, f := range []string{"config.json", "gokr-packer.yml"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(bytes.ToLower(b), []byte("password")) {
			t.Errorf("%s mentions a password; passwords come from $%s or %s", f, passwordEnv, passwordFile)
		}
	}
	git := testenv.NeedCommand(t, "git")
	cmd := exec.Command(git, "check-ignore", "-q", passwordFile)
	cmd.Dir = root
	if err := cmd.Run(); err != nil {
		t.Errorf("git check-ignore %s: %v; want it ignored", passwordFile, err)
	}
}

// TestConfigPackagesExist checks that every package config.json and the
// targets name resolves in the module (go list), and that the services
// are commands.
func TestConfigPackagesExist(t *testing.T) {
	root := moduleRoot(t)
	in := readInstance(t)
	s, err := readSettings(filepath.Join(root, "gokr-packer.yml"))
	if err != nil {
		t.Fatal(err)
	}
	commands := append(append([]string{}, in.Packages...), deref2(in.GokrazyPackages)...)
	others := []string{deref(in.KernelPackage), deref(in.FirmwarePackage), deref(in.EEPROMPackage)}
	for _, target := range s.Targets {
		for field, v := range target.Overrides {
			if strings.HasSuffix(field, "Package") && v != "" {
				others = append(others, v)
			}
		}
	}
	args := append([]string{"list", "-e", "-f", "{{.ImportPath}} {{.Name}} {{.Error}}"}, commands...)
	cmd := exec.Command("go", append(args, others...)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=linux")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, rest, _ := strings.Cut(line, " ")
		got[path] = rest
	}
	for _, pkg := range append(commands, others...) {
		rest, ok := got[pkg]
		switch {
		case !ok:
			t.Errorf("go list did not report %s", pkg)
		case !strings.HasSuffix(rest, "<nil>"):
			t.Errorf("%s: %s", pkg, rest)
		case slices.Contains(commands, pkg) && !strings.HasPrefix(rest, "main "):
			t.Errorf("%s is package %q; want a command (package main)", pkg, rest)
		}
	}
}

// TestConfigFlagsParse builds cmd/clinicbox and hands it config.json's
// flags followed by -h: the flag package stops at the first flag it does
// not know or cannot parse, and exits 0 only when it reaches -h.
func TestConfigFlagsParse(t *testing.T) {
	root := moduleRoot(t)
	in := readInstance(t)
	bin := filepath.Join(t.TempDir(), "clinicbox")
	build := exec.Command("go", "build", "-o", bin, clinicboxPkg)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	flags := in.PackageConfig[clinicboxPkg].CommandLineFlags
	for _, tc := range []struct {
		name  string
		flags []string
		ok    bool
	}{
		{"config.json", flags, true},
		{"unknown flag is caught", append([]string{"-no-such-flag=1"}, flags...), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command(bin, append(tc.flags, "-h")...).CombinedOutput()
			if got := err == nil; got != tc.ok {
				t.Errorf("clinicbox %q -h: got success %v (%v); want %v\n%s", tc.flags, got, err, tc.ok, out)
			}
		})
	}
}

func deref2(p *[]string) []string {
	if p == nil {
		return nil
	}
	return *p
}
