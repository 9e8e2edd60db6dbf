// Package testenv decides whether an integration test may skip when the real
// component it needs (PostgreSQL, loop devices, Chromium, qemu) is missing.
//
// With CLINICBOX_REQUIRE_ALL=1 (set by CI) a skip becomes a failure, so a
// missing package on the CI machine can never turn a run green silently.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// RequireAll reports whether every integration test must run.
func RequireAll() bool { return os.Getenv("CLINICBOX_REQUIRE_ALL") == "1" }

// Skip skips t with the reason, or fails it when RequireAll is set.
func Skip(t testing.TB, reason string) {
	t.Helper()
	if RequireAll() {
		t.Fatalf("required component missing: %s (CLINICBOX_REQUIRE_ALL=1)", reason)
	}
	t.Skip(reason)
}

// NeedCommand returns the path of the named program, or skips t.
func NeedCommand(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Skip(t, name+" not installed")
	}
	return p
}

// NeedRoot skips t unless the test runs as root (loop devices, mounts).
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Skip(t, "needs root")
	}
}
