package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/clinicbox/clinicbox/drivers/testenv"
)

// buildSh builds this shell once per test into a temporary directory.
func buildSh(t *testing.T) string {
	t.Helper()
	sh := filepath.Join(t.TempDir(), "sh")
	cmd := exec.Command("go", "build", "-o", sh, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return sh
}

// runIn runs sh -c script in dir and returns its status and standard output.
func runIn(t *testing.T, sh, dir, script string) (int, string) {
	t.Helper()
	cmd := exec.Command(sh, "-c", script)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout = &out
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%s -c %q: %v", sh, script, err)
	}
	return cmd.ProcessState.ExitCode(), out.String()
}

// snapshot lists dir's files with their contents.
func snapshot(t *testing.T, dir string) string {
	var b strings.Builder
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		c, _ := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		b.WriteString(rel + "=" + string(c) + "\n")
		return nil
	})
	return b.String()
}

// The shell does what the system's /bin/sh does with every form PostgreSQL
// and the restore write: same status, same output, same files.
func TestSameAsSystemShell(t *testing.T) {
	ours := buildSh(t)
	scripts := []string{
		`printf '%s|' "a b" 'c"d' e\ f "x\"y\\z" ''`,
		`/bin/false || printf fallback`,
		`/bin/true && printf both; printf third`,
		`/bin/false && printf never; printf after`,
		`exit 3`,
		`/bin/false`,
		`/no/such/program`,
		`printf one > f; printf two >> f; printf three 2>/dev/null >> f`,
		`mv -f cache/seg "pg_wal/RECOVERYXLOG" 2>/dev/null || printf fetched > pg_wal/RECOVERYXLOG`,
		`mkdir -p cache && printf seg > cache/seg && mv -f cache/seg "pg_wal/RECOVERYXLOG" 2>/dev/null || printf fetched`,
		`mkdir -p cache/sub && mv -f cache cache.done 2>/dev/null; rm -rf cache.done`,
		`rm -f gone; printf ok`,
		`exec printf '%s' "started" < "/dev/null" >> "log" 2>&1`,
		`"/bin/sh" -c 'exit 7' || exit 1`,
		`printf x >&2 2>/dev/null; printf y 2>/dev/null >&2`,
		`sh -c 'kill -9 $$'`,
	}
	for _, s := range scripts {
		t.Run(s, func(t *testing.T) {
			results := map[string]string{}
			for _, sh := range []string{"/bin/sh", ours} {
				dir := t.TempDir()
				os.Mkdir(filepath.Join(dir, "pg_wal"), 0o755)
				status, out := runIn(t, sh, dir, s)
				results[sh] = strings.Join([]string{string(rune('0' + status%10)), string(rune('0' + status/10%10)), string(rune('0' + status/100)), out, snapshot(t, dir)}, "\n")
			}
			if results[ours] != results["/bin/sh"] {
				t.Errorf("got (status digits, output, files)\n%s\nwant as /bin/sh\n%s", results[ours], results["/bin/sh"])
			}
		})
	}
}

// Whatever would need more than this shell understands is refused whole,
// before anything runs.
func TestRefusesWhatItDoesNotImplement(t *testing.T) {
	for _, s := range []string{
		`printf $HOME`, "printf `id`", `printf "$HOME"`, `printf *`, `printf a | cat`,
		`printf a & printf b`, `(printf a)`, `printf a 3>f`, `printf a >&f`, `~/x`, `printf "open`,
		`printf 'open`, `printf a &&`, `|| printf a`, "printf a\nprintf b", `exec`, `printf a >`,
	} {
		var stderr bytes.Buffer
		if got := run([]string{"-c", s}, &stderr); got != 2 || !strings.Contains(stderr.String(), "sh:") {
			t.Errorf("%q: got status %d, %q; want 2 and a message", s, got, stderr.String())
		}
	}
	if got := run([]string{"script.sh"}, &bytes.Buffer{}); got != 2 {
		t.Errorf("a script: got %d; want 2", got)
	}
}

// A C library's system() may end the options with -- (glibc from 2.37
// runs `sh -c -- COMMAND`); the command after it runs as without.
func TestDoubleDashEndsOptions(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "seg"), []byte("wal"), 0o644)
	var stderr bytes.Buffer
	script := "mv -f " + filepath.Join(dir, "seg") + " " + filepath.Join(dir, "RECOVERYXLOG") + " || exit 5"
	if got := run([]string{"-c", "--", script}, &stderr); got != 0 {
		t.Fatalf("sh -c -- %q: got status %d, %q; want 0", script, got, stderr.String())
	}
	if got := snapshot(t, dir); got != "RECOVERYXLOG=wal\n" {
		t.Errorf("files: got %q; want only RECOVERYXLOG=wal", got)
	}
	if got := run([]string{"-c", "--"}, &bytes.Buffer{}); got != 2 {
		t.Errorf("sh -c -- with no command: got %d; want 2", got)
	}
}

// The box has no coreutils: mv and rm work with nothing on PATH.
func TestBuiltinsNeedNoPrograms(t *testing.T) {
	ours := buildSh(t)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "cache", "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "cache", "seg"), []byte("wal"), 0o644)
	script := `mv -f cache/seg "RECOVERYXLOG" 2>/dev/null || exit 1; mv -f cache cache.done 2>/dev/null; rm -rf cache.done; mv -f missing x 2>/dev/null || exit 4`
	cmd := exec.Command(ours, "-c", script)
	cmd.Dir, cmd.Env = dir, []string{"PATH="}
	err := cmd.Run()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 4 {
		t.Fatalf("got %v; want status 4 from the last mv", err)
	}
	if got := snapshot(t, dir); got != "RECOVERYXLOG=wal\n" {
		t.Errorf("files: got %q; want only RECOVERYXLOG=wal", got)
	}
}

// pg_ctl starts PostgreSQL through /bin/sh with exec and redirections and
// waits for the server to write its own process ID, which must be the
// shell's: with this shell as /bin/sh (bound over it in a private mount
// namespace) pg_ctl -w start returns, the server answers, and it stops.
func TestPgCtlStartsThroughIt(t *testing.T) {
	testenv.NeedRoot(t)
	unshare := testenv.NeedCommand(t, "unshare")
	bin := "/usr/lib/postgresql/15/bin"
	if _, err := os.Stat(filepath.Join(bin, "pg_ctl")); err != nil {
		testenv.Skip(t, "no PostgreSQL 15 at "+bin)
	}
	ours := buildSh(t)
	dir, err := os.MkdirTemp("", "clinicsh-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o777)
	os.Chmod(filepath.Dir(ours), 0o755)
	data := filepath.Join(dir, "data")
	// The host's shell sets up the namespace; from the mount on, every
	// /bin/sh pg_ctl and the server run is this one.
	script := fmt.Sprintf(`set -e
mount --bind %[1]s /bin/sh
runuser -u postgres -- %[2]s/initdb -D %[3]s -U postgres --locale=C.UTF-8 >/dev/null
runuser -u postgres -- %[2]s/pg_ctl -D %[3]s -l %[4]s/log -w -t 60 -o "-k %[4]s -c listen_addresses=''" start
runuser -u postgres -- %[2]s/psql -h %[4]s -U postgres -Atc 'SELECT 6*7' postgres
runuser -u postgres -- %[2]s/pg_ctl -D %[3]s -w -m fast stop`, ours, bin, data, dir)
	out, err := exec.Command(unshare, "-m", "--propagation", "private", "/bin/bash", "-c", script).CombinedOutput()
	log, _ := os.ReadFile(filepath.Join(dir, "log"))
	if err != nil || !strings.Contains(string(out), "42") {
		t.Fatalf("got %v:\n%s\nserver log:\n%s\nwant pg_ctl to start and stop the server through this shell", err, out, log)
	}
}
