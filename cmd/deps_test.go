// Package deps_test holds the dependency rules of the whole tree: what each
// shipped program links and what each layer may import.
package deps_test

import (
	"os/exec"
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
	{"appliance/restore", []string{mod + "drivers/usb/...", mod + "drivers/panel/...", mod + "drivers/smart/...", mod + "appliance/vault"}, "a restore needs the repository and the database only"},
}

// directRules bind a package's own imports only.
var directRules = []rule{
	{"appliance/offsite", []string{mod + "appliance/vault", "github.com/jackc/pgx/v5"}, "the shipper speaks the wire protocol, and to the database through drivers/postgres"},
}

// TestDependencies checks every rule with go list -deps (like tailscale's
// tstest/deptest).
func TestDependencies(t *testing.T) {
	goTool := testenv.NeedCommand(t, "go")
	deps := []string{"list", "-deps", "-f", "{{if not .DepOnly}}=={{.ImportPath}}{{else}}{{.ImportPath}}{{end}}"}
	imports := []string{"list", "-f", "{{join .Imports \"\\n\"}}"}
	check(t, goTool, deps, rules)
	check(t, goTool, imports, directRules)
}

func check(t *testing.T, goTool string, list []string, rules []rule) {
	for _, r := range rules {
		t.Run(r.pkg, func(t *testing.T) {
			out, err := exec.Command(goTool, append(list, "../"+r.pkg)...).CombinedOutput()
			if err != nil {
				t.Fatalf("go list -deps %s: %v\n%s", r.pkg, err, out)
			}
			for _, dep := range strings.Fields(string(out)) {
				if strings.HasPrefix(dep, "==") {
					continue // the package (or the tree's packages) itself
				}
				for _, b := range r.banned {
					if matches(b, dep) {
						t.Errorf("%s depends on %s; it must not (%s)", r.pkg, dep, r.why)
					}
				}
			}
		})
	}
}

// matches reports whether path is pattern, or under it when the pattern
// ends in "/...".
func matches(pattern, path string) bool {
	if tree, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == tree || strings.HasPrefix(path, tree+"/")
	}
	return path == pattern
}
