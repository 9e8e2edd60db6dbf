package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/web"
	"github.com/clinicbox/clinicbox/appliance/web/webclient"
	"github.com/clinicbox/clinicbox/drivers/postgres"
	"github.com/clinicbox/clinicbox/drivers/testenv"
)

// syncBuffer is written by the demo and read by the test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// The demo runs the whole box: three drives enrolled, the box's restore
// drill of the last one (as root, in memory), two mornings of swaps by the
// autopilot (one pulled without the button), its pages served, and nothing
// left running or mounted; everything it wrote is under --dir.
func TestDemoRunsTwoDays(t *testing.T) {
	if _, err := postgres.BinDir(); err != nil {
		testenv.Skip(t, "PostgreSQL binaries: "+err.Error())
	}
	dir, err := os.MkdirTemp("", "clinicctl-demo-test-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	demoFetchProgram = clinicctl
	t.Cleanup(func() { demoFetchProgram = "" })
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- runDemo(context.Background(), []string{"--dir", dir, "--days", "2", "--speed", "3600", "--listen", "127.0.0.1:0"}, &out, io.Discard)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo: %v\n%s", err, out.String())
		}
	case <-time.After(8 * time.Minute):
		t.Fatalf("demo did not finish two days\n%s", out.String())
	}
	text := out.String()
	drill := "box: Restore drill of Grandfather passed: a usable database in "
	if os.Geteuid() != 0 {
		drill = "restore drills are off: the demo mounts their scratch in memory, which needs root"
	}
	for _, want := range []string{
		drill,
		`"red" is now Grandfather and holds a verified backup`,
		"front desk (day 2)",
		"without pressing the button",
		"chain intact",
		"database stopped and removed",
		"the box's setup code (on its screen): ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q:\n%s", want, text)
		}
	}
	// The pages were served while it ran, and are gone now.
	m := regexp.MustCompile(`pages: (https://\S+)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no URL printed:\n%s", text)
	}
	fp, err := web.ReadFingerprint(filepath.Join(dir, "state", "web"))
	if err != nil || !strings.Contains(text, "fingerprint is "+fp) {
		t.Errorf("got fingerprint %q, %v from the state; want it printed:\n%s", fp, err, text)
	}
	if err := webclient.New(m[1], "any password", fp).SignIn(context.Background()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("the demo's pages at %s after it ended: got %v; want the connection refused", m[1], err)
	}
	for _, want := range []string{"state/custody.jsonl", "state/box.key", "drives/blue/clinicbox-drive.json", "drives/red/clinicbox/clinicbox-repo.json"} {
		if _, err := os.Stat(filepath.Join(dir, want)); err != nil {
			t.Errorf("demo left no %s: %v", want, err)
		}
	}
	// The vault holds the box's repository (ciphertext only) and it
	// verifies with the box's key.
	ids, err := archive.LoadIdentities(filepath.Join(dir, "state", "box.key"))
	if err != nil {
		t.Fatal(err)
	}
	repo, err := archive.OpenFirstUse(filepath.Join(dir, "vault", "boxes", "demo-box", "repo"))
	if err != nil {
		t.Fatalf("no repository in the demo's vault: %v", err)
	}
	rep, err := repo.Verify(context.Background(), archive.VerifyOptions{Identities: ids})
	if err != nil || !rep.OK() || len(rep.Backups) == 0 {
		t.Errorf("the vault's repository: %v, problems %v, %d backups; want a verified backup", err, rep.Problems, len(rep.Backups))
	}
	// A drill's scratch held the restored database in memory only, and is
	// gone: nothing restored is left on this machine's disk.
	if mounts, err := os.ReadFile("/proc/self/mountinfo"); err != nil || strings.Contains(string(mounts), dir) {
		t.Errorf("a mount under the demo's directory is left (%v):\n%s", err, mounts)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "drill-scratch")); len(ents) != 0 {
		t.Errorf("the drills' scratch is left: %v", ents)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "drives", "stranger")); len(ents) != 0 {
		t.Errorf("the stranger's drive was written: %v", ents)
	}
}
