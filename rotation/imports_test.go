package rotation

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/clinicbox/clinicbox/drivers/testenv"
)

// TestImportsNoDrivers guards the architecture: rotation is pure logic and
// must not depend, even indirectly, on a driver, pgx or tailscale.
func TestImportsNoDrivers(t *testing.T) {
	goTool := testenv.NeedCommand(t, "go")
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 5 || lines[len(lines)-1] != "github.com/clinicbox/clinicbox/rotation false" {
		t.Fatalf("go list -deps: got %d packages ending %q; want the standard library then rotation", len(lines), lines[len(lines)-1])
	}
	for _, line := range lines {
		dep, std, _ := strings.Cut(line, " ")
		for _, banned := range []string{"/drivers/", "pgx", "tailscale", "tsnet"} {
			if strings.Contains(dep, banned) {
				t.Errorf("rotation depends on %s; want no package whose path contains %q", dep, banned)
			}
		}
		if std != "true" && !strings.HasPrefix(dep, "github.com/clinicbox/clinicbox/rotation") {
			t.Errorf("rotation depends on %s; want the standard library and its own packages (chain) only", dep)
		}
	}
}
