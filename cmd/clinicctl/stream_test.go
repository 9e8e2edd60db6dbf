package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
)

var clinicctl string // the binary under test, built by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "clinicctl-test-")
	if err != nil {
		panic(err)
	}
	os.Chmod(dir, 0o755) // a drill's server runs the binary as restore_command
	clinicctl = filepath.Join(dir, "clinicctl")
	if out, err := exec.Command("go", "build", "-race", "-o", clinicctl, ".").CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// waitUntil polls a condition the process under test makes true on disk.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(2 * time.Minute)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// clinicctl stream killed with SIGKILL mid-segment and restarted leaves no
// gap; complete segments are byte-identical to the server's pg_wal; SIGINT
// flushes and exits 0.
func TestStreamSurvivesSIGKILL(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{Conf: []string{"wal_keep_size = 1GB"}})
	ctx := context.Background()
	if err := c.PgbenchInit(ctx, 1); err != nil {
		t.Fatal(err)
	}
	id, _ := age.GenerateX25519Identity()
	dir := filepath.Join(t.TempDir(), "repo")
	args := []string{"stream", "--db", c.URL(), "--repo", dir, "--slot", "clinicbox_test", "--recipient", id.Recipient().String()}
	repoState := func() archive.WALState {
		r, err := archive.OpenFirstUse(dir)
		if err != nil {
			return archive.WALState{}
		}
		st, _ := r.WALState()
		return st
	}
	for round := range 3 {
		cmd := exec.Command(clinicctl, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		before := repoState().Flushed
		if err := c.Pgbench(ctx, "-t", "6000"); err != nil {
			t.Fatal(err)
		}
		// Kill once WAL is flushed into the middle of a segment.
		waitUntil(t, "a mid-segment flush", func() bool {
			st := repoState()
			return st.Flushed > before && uint64(st.Flushed)%(16<<20) != 0
		})
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		t.Logf("round %d: killed at %s", round, repoState().Flushed)
	}
	// A last run catches up and stops cleanly on SIGINT.
	cmd := exec.Command(clinicctl, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// WAL written after the start can only have been stored by this process.
	c.MustExec(t, "CREATE TABLE after_restart AS SELECT generate_series(1, 1000000) AS x")
	target := serverLSN(t, c)
	waitUntil(t, "catch-up", func() bool { return repoState().Flushed >= target })
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("stream after SIGINT: %v\n%s", err, stderr.String())
	}
	verifyCmd(t, dir, id)
	compareWithServer(t, c, dir, id)
}

func serverLSN(t *testing.T, c *pgtest.Cluster) archive.LSN {
	t.Helper()
	l, err := c.CurrentLSN(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func verifyCmd(t *testing.T, dir string, id *age.X25519Identity) {
	t.Helper()
	keyFile := filepath.Join(t.TempDir(), "key")
	os.WriteFile(keyFile, []byte(id.String()+"\n"), 0o600)
	out, err := exec.Command(clinicctl, "verify", "--repo", dir, "--identity", keyFile).CombinedOutput()
	if err != nil || strings.Contains(string(out), "problem") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
}

// compareWithServer checks every complete stored segment against pg_wal.
func compareWithServer(t *testing.T, c *pgtest.Cluster, dir string, id *age.X25519Identity) {
	t.Helper()
	repo, err := archive.OpenFirstUse(dir)
	if err != nil {
		t.Fatal(err)
	}
	tls, _ := repo.Timelines()
	compared := 0
	for _, tl := range tls {
		for _, s := range tl.Segments {
			if s.Partial {
				continue
			}
			server, err := os.ReadFile(filepath.Join(c.DataDir, "pg_wal", s.Name))
			if err != nil {
				continue // recycled by the server after a checkpoint
			}
			sd, err := repo.ReadSegment(s.TLI, s.SegNo, []age.Identity{id})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(sd.Data, server) {
				t.Errorf("segment %s differs from the server's pg_wal", s.Name)
			}
			compared++
		}
	}
	if compared < 2 {
		t.Errorf("compared %d complete segments with the server; want at least 2", compared)
	}
}
