// Package deps_test holds the dependency rules of the whole tree: what each
// shipped program links and what each layer may import.
package deps_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/clinicbox/clinicbox/drivers/testenv"
)

const mod = "github.com/clinicbox/clinicbox/"

// rule says which packages (module paths with "..." for a tree, or
// standard and third-party paths as they are) may not be among pkg's
// dependencies, and why.
type rule struct {
	pkg    string
	banned []string
	why    string
}

var rules = []rule{
	{"cmd/clinicbox", []string{"testing", mod + "appliance/vault", mod + "drivers/postgres/pgtest", mod + "drivers/postgres/pgcluster"},
		"the box links only what runs on the box: no vault server, no test code"},
	{"cmd/clinicvault", []string{"testing", mod + "appliance", mod + "drivers/usb", mod + "drivers/panel", mod + "drivers/smart"},
		"the vault stores ciphertext: no orchestrator, no box hardware"},
	{"cmd/clinicctl", []string{"testing", mod + "drivers/postgres/pgtest"}, "a shipped program does not link testing"},
	{"cmd/clinicbench", []string{"testing"}, "a shipped program does not link testing"},
	{"cmd/clinicimage", []string{"testing"}, "a shipped program does not link testing"},
	{"rotation/...", []string{mod + "drivers/...", mod + "appliance/...", "github.com/jackc/...", "tailscale.com/..."},
		"rotation is pure logic: no driver, no database, no network, no orchestrator"},
	{"drivers/usb/...", []string{mod + "appliance/..."}, "drivers stand alone"},
	{"drivers/smart/...", []string{mod + "appliance/..."}, "drivers stand alone"},
	{"drivers/panel/...", []string{mod + "appliance/..."}, "drivers stand alone"},
	{"drivers/postgres/...", []string{mod + "appliance/..."}, "drivers stand alone"},
	{"drivers/tailnet/...", []string{mod + "appliance/..."}, "drivers stand alone"},
	{"appliance/archive", []string{mod + "drivers/...", "tailscale.com/..."}, "the repository format reads and writes files only"},
	{"appliance/status", []string{mod + "drivers/...", mod + "rotation/..."}, "the status document is plain data"},
	{"appliance/vault/wire", []string{mod + "drivers/...", mod + "appliance/vault", mod + "appliance/offsite"}, "the wire protocol is shared by both sides and depends on neither"},
	{"appliance", boxHardware,
		"the orchestrator declares small interfaces; appliance/hardware glues the box's drivers to them where cmd/clinicbox wires them"},
	{"appliance/restore", []string{mod + "drivers/usb/...", mod + "drivers/panel/...", mod + "drivers/smart/...", mod + "appliance/vault"}, "a restore needs the repository and the database only"},
}

// boxHardware are the drivers of the box's own hardware.
var boxHardware = []string{mod + "drivers/usb", mod + "drivers/panel", mod + "drivers/smart"}

// directRules bind a package's own imports only.
var directRules = []rule{
	{"appliance/offsite", []string{mod + "appliance/vault", "github.com/jackc/pgx/v5"}, "the shipper speaks the wire protocol, and to the database through drivers/postgres"},
}

// depsFormat marks the packages named on go list's command line with "==".
const depsFormat = "{{if not .DepOnly}}=={{.ImportPath}}{{else}}{{.ImportPath}}{{end}}"

// TestDependencies checks every rule with go list -deps (like tailscale's
// tstest/deptest).
func TestDependencies(t *testing.T) {
	goTool := testenv.NeedCommand(t, "go")
	deps := []string{"list", "-deps", "-f", depsFormat}
	imports := []string{"list", "-f", "{{join .Imports \"\\n\"}}"}
	check(t, goTool, deps, rules)
	check(t, goTool, imports, directRules)
}

func check(t *testing.T, goTool string, list []string, rules []rule) {
	for _, r := range rules {
		t.Run(r.pkg, func(t *testing.T) {
			bad, err := violations(goTool, list, r)
			if err != nil {
				t.Fatal(err)
			}
			for _, dep := range bad {
				t.Errorf("%s depends on %s; it must not (%s)", r.pkg, dep, r.why)
			}
		})
	}
}

// violations lists the banned packages among what go list (with its
// arguments in list) says r.pkg depends on.
func violations(goTool string, list []string, r rule) ([]string, error) {
	out, err := exec.Command(goTool, append(list, "../"+r.pkg)...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("go %s %s: %v\n%s", list[0], r.pkg, err, out)
	}
	var bad []string
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "==") {
			continue // the package (or the tree's packages) itself
		}
		for _, b := range r.banned {
			if matches(b, dep) {
				bad = append(bad, dep)
			}
		}
	}
	return bad, nil
}

// TestRulesCatchABrokenBoundary checks that the rules see a violation:
// with a file that imports the USB driver laid over package appliance
// (go list -overlay), the appliance's rule must fail.
func TestRulesCatchABrokenBoundary(t *testing.T) {
	goTool := testenv.NeedCommand(t, "go")
	dir := t.TempDir()
	src := filepath.Join(dir, "broken.go")
	if err := os.WriteFile(src, []byte("package appliance\n\nimport _ \""+mod+"drivers/usb\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	target, err := filepath.Abs("../appliance/zz_broken.go")
	if err != nil {
		t.Fatal(err)
	}
	overlay, _ := json.Marshal(map[string]any{"Replace": map[string]string{target: src}})
	if err := os.WriteFile(filepath.Join(dir, "overlay.json"), overlay, 0o644); err != nil {
		t.Fatal(err)
	}
	list := []string{"list", "-overlay", filepath.Join(dir, "overlay.json"), "-deps", "-f", depsFormat}
	for _, r := range rules {
		if r.pkg != "appliance" {
			continue
		}
		bad, err := violations(goTool, list, r)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(bad, mod+"drivers/usb") {
			t.Errorf("with package appliance importing drivers/usb the rule found %q; want drivers/usb", bad)
		}
		return
	}
	t.Fatal("no rule for package appliance")
}

// matches reports whether path is pattern, or under it when the pattern
// ends in "/...".
func matches(pattern, path string) bool {
	if tree, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == tree || strings.HasPrefix(path, tree+"/")
	}
	return path == pattern
}
