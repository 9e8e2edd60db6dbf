package fault

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
)

var update = flag.Bool("update", false, "write RELIABILITY.md at the repository root from this run")

var (
	clinicctl string    // the binary under test, built by TestMain
	report    Collector // every try of every fault
)

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "clinicbox-fault-")
	if err != nil {
		panic(err)
	}
	os.Chmod(dir, 0o755) // restore_command runs clinicctl as the server's user
	clinicctl = filepath.Join(dir, "clinicctl")
	if out, err := exec.Command("go", "build", "-o", clinicctl, "github.com/clinicbox/clinicbox/cmd/clinicctl").CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 && (*update || os.Getenv("CLINICBOX_WRITE_RELIABILITY") == "1") {
		if err := writeReliability("../../RELIABILITY.md"); err != nil {
			fmt.Fprintln(os.Stderr, "RELIABILITY.md:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// try is one attempt at one fault; it lands in the report when the test
// ends, marked failed if the test failed.
type try struct {
	Fault, Outcome, Lost string
}

func newTry(t *testing.T, fault string) *try {
	tr := &try{Fault: fault}
	t.Cleanup(func() {
		out := tr.Outcome
		if t.Failed() {
			out = "FAILED (" + t.Name() + ")"
		}
		if t.Skipped() {
			return
		}
		report.Add(tr.Fault, out, tr.Lost, t.Failed())
	})
	return tr
}

// rounds is how many SIGKILL rounds to run: CLINICBOX_TORTURE_ROUNDS, or 5.
func rounds(t *testing.T) int {
	if s := os.Getenv("CLINICBOX_TORTURE_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("CLINICBOX_TORTURE_ROUNDS=%q: want a positive number", s)
		}
		return n
	}
	return 5
}

// sharedDir makes a temporary directory the server's unprivileged user can
// reach (t.TempDir's parents are private to root).
func sharedDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "clinicbox-fault-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(d, 0o755)
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// key is a repository key: the recipient clinicctl encrypts to and the
// identity file verify and restores read.
type key struct {
	recipient string
	ids       []age.Identity
	file      string
}

func newKey(t *testing.T) key {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(file, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return key{recipient: id.Recipient().String(), ids: []age.Identity{id}, file: file}
}

// verifyRepo verifies the whole repository without recording results.
func verifyRepo(t *testing.T, dir string, k key) *archive.Report {
	t.Helper()
	repo, err := archive.OpenFirstUse(dir)
	if err != nil {
		t.Fatalf("open repository: %v", err)
	}
	rep, err := repo.Verify(context.Background(), archive.VerifyOptions{Identities: k.ids})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return rep
}

// waitUntil polls a condition the process under test makes true on disk.
func waitUntil(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(limit)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
	}
}

func writeReliability(path string) error {
	host, _ := os.Hostname()
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	m := Machine{Host: host, Kernel: strings.TrimSpace(string(kernel)), Go: runtime.Version(), CPUs: runtime.NumCPU(),
		Date: time.Now(), Command: "go test -race ./appliance/fault -update", PostgreSQL: postgresVersion()}
	if n := os.Getenv("CLINICBOX_TORTURE_ROUNDS"); n != "" {
		m.Command = "make torture: " + n + " rounds"
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := WriteMarkdown(f, m, report.Rows(), attacks, notes); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func postgresVersion() string {
	bin, err := pgtest.BinDir()
	if err != nil {
		return "unknown"
	}
	out, err := exec.Command(filepath.Join(bin, "postgres"), "--version").Output()
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(out))
	return strings.Trim(f[len(f)-1], "()")
}
