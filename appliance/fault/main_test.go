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
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/durable"
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
	start, load := time.Now(), loadAverage()
	code := m.Run()
	os.RemoveAll(dir)
	if out := os.Getenv("CLINICBOX_TORTURE_OUT"); out != "" {
		if err := writeTorture(out, Torture{Took: time.Since(start), LoadBefore: load, Load: loadAverage()}); err != nil {
			fmt.Fprintln(os.Stderr, "torture summary:", err)
			code = 1
		}
	}
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

// rounds is how many rounds of random faults t runs: what CI runs, or
// its share of CLINICBOX_TORTURE_ROUNDS (make torture), at least 2.
func rounds(t *testing.T) int {
	top, _, _ := strings.Cut(t.Name(), "/")
	sh, ok := torture[top]
	if !ok {
		t.Fatalf("%s runs rounds but has no share of the torture run: add it to torture", top)
	}
	s := os.Getenv("CLINICBOX_TORTURE_ROUNDS")
	if s == "" {
		return sh.ci
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("CLINICBOX_TORTURE_ROUNDS=%q: want a positive number", s)
	}
	got := max(2, n*sh.percent/100)
	torturedRounds.Store(top, got)
	return got
}

// share is a test's rounds: in CI, and in percent of a torture run.
type share struct{ ci, percent int }

// torture shares the rounds of a torture run among the tests that run
// rounds of random faults. The shares are set so that 100 rounds take
// well under an hour on a loaded 2-core machine: a round of clinicctl
// kills or power cuts takes a few seconds, a round of the service's
// kills 15-30 s (a restart of the service, built with the race
// detector, and a sign-in).
var torture = map[string]share{
	"TestSIGKILL":               {5, 38},
	"TestPowerLoss":             {5, 20},
	"TestDrivePulledMidWrite":   {3, 5},
	"TestSIGKILLService":        {5, 22},
	"TestSIGKILLServiceOnClock": {3, 15},
}

// torturedRounds is how many rounds each test ran, for the summary.
var torturedRounds sync.Map

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
// Without progress it fails once stall has passed. With progress, a
// fingerprint of what the process under test has done so far, it waits
// as long as the fingerprint keeps changing and fails only when it stays
// the same for stall: a loaded machine slows the work down without
// failing the test, a stuck process fails it within stall.
func waitUntil(t testing.TB, what string, stall time.Duration, cond func() bool, progress ...func() string) {
	t.Helper()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	start := time.Now()
	last, moved := fingerprint(progress), start
	for !cond() {
		<-tick.C
		if p := fingerprint(progress); p != last {
			last, moved = p, time.Now()
		}
		if time.Since(moved) > stall {
			t.Fatalf("%s waiting for %s: nothing moved for %s (last progress: %.200q)", time.Since(start).Round(time.Second), what, stall, last)
		}
	}
}

// pollEvery is how often a wait looks again.
const pollEvery = 20 * time.Millisecond

func fingerprint(progress []func() string) string {
	var b strings.Builder
	for _, p := range progress {
		b.WriteString(p())
		b.WriteByte('|')
	}
	return b.String()
}

// machine describes this machine and the run.
func machine() Machine {
	host, _ := os.Hostname()
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	m := Machine{Host: host, Kernel: strings.TrimSpace(string(kernel)), Go: runtime.Version(), CPUs: runtime.NumCPU(),
		Date: time.Now(), Command: "go test -race ./appliance/fault -update", PostgreSQL: postgresVersion()}
	if n := os.Getenv("CLINICBOX_TORTURE_ROUNDS"); n != "" {
		m.Command = "make torture: " + n + " rounds"
	}
	return m
}

// loadAverage is the first three fields of /proc/loadavg.
func loadAverage() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// writeTorture writes the torture run's summary to path (make torture:
// docs/TORTURE.md).
func writeTorture(path string, run Torture) error {
	run.Rounds = map[string]int{}
	torturedRounds.Range(func(k, v any) bool {
		run.Rounds[k.(string)] = v.(int)
		return true
	})
	var b strings.Builder
	if err := WriteTorture(&b, machine(), run, report.Rows()); err != nil {
		return err
	}
	return durable.WriteFile(path, []byte(b.String()), 0o644)
}

func writeReliability(path string) error {
	m := machine()
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
