// Package testenv decides whether an integration test may skip when the real
// component it needs at a step of the data path (PostgreSQL, loop devices,
// Chromium, qemu) is missing.
//
// With CLINICBOX_REQUIRE_ALL=1 (set by CI) a skip becomes a failure, so a
// missing package on the CI machine can never turn a run green silently.
package testenv

import (
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
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

// NeedLANAddress returns one of the machine's own addresses that is not
// loopback (IPv4 if there is one), for tests of how the box treats a server
// across a network; it skips t when the machine has none.
func NeedLANAddress(t testing.TB) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	var v6 string
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || !n.IP.IsGlobalUnicast() {
			continue
		}
		if n.IP.To4() != nil {
			return n.IP.String()
		}
		if v6 == "" {
			v6 = n.IP.String()
		}
	}
	if v6 == "" {
		Skip(t, fmt.Sprintf("no network address other than loopback (%v)", err))
	}
	return v6
}

// VersityGWVersion is the versitygw release .ci/versitygw builds.
const VersityGWVersion = "v1.8.0"

// NeedVersityGW returns the path of the versitygw program that .ci/setup
// builds ($CLINICBOX_VERSITYGW, else its place under /var/cache/clinicbox,
// else one on $PATH), or skips t.
func NeedVersityGW(t testing.TB) string {
	t.Helper()
	p := os.Getenv("CLINICBOX_VERSITYGW")
	if p == "" {
		p = "/var/cache/clinicbox/versitygw-" + VersityGWVersion + "/versitygw"
	}
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return p
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	Skip(t, "versitygw not built; run .ci/setup (or .ci/versitygw)")
	return ""
}

// Patience is how long a test may wait for work that a loaded machine can
// slow down without bound (a daemon's round, a message, a file): until a
// minute before the test binary's -timeout, so the test fails with its own
// message rather than the binary's panic, and never sooner because the
// machine is busy. Without a deadline it is ten minutes.
func Patience(t testing.TB) time.Duration {
	d, ok := t.(interface{ Deadline() (time.Time, bool) })
	if !ok {
		return 10 * time.Minute
	}
	end, ok := d.Deadline()
	if !ok {
		return 10 * time.Minute
	}
	return max(time.Until(end)-time.Minute, time.Minute)
}

// DirBytes is the size of the regular files under dir, read while they
// may still grow or go: what cannot be read is not counted.
func DirBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// SharedDir is a temporary directory, removed after the test, that other
// users can enter, such as the unprivileged user a PostgreSQL server runs
// as (t.TempDir's parents are private to root).
func SharedDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "clinicbox-test-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(d, 0o755)
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// StatusKB reads a "kB" field of this process's /proc/self/status (VmHWM,
// VmRSS, RssAnon, ...); 0 when it cannot be read.
func StatusKB(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && k == field {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
