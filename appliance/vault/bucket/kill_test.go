package bucket

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/clinicbox/clinicbox/appliance/vault/store"
	"github.com/clinicbox/clinicbox/appliance/vault/store/storetest"
)

// These tests SIGKILL a writer in the middle of a request: a child process
// (this test binary, run again) that writes through the store until its
// data source blocks partway through a part or a batch, says so on
// stdout, and waits there until it is killed.

// childEnv names the store and what to write, for the child.
const childEnv = "BUCKET_KILL_CHILD"

type childJob struct {
	What  string          // "backup" or "flush"
	Local string          // a local store's directory, or
	S3    *store.S3Config // an S3 store
}

// blocking reads data until off, then reports on stdout and blocks.
type blocking struct {
	data []byte
	off  int64
}

func (b blocking) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > b.off {
		fmt.Println("blocked")
		select {} // the request is in flight; the parent kills us here
	}
	return copy(p, b.data[off:]), nil
}

// The data both sides agree on: five parts of backup, a journal of two
// batches.
var (
	killBase    = testData(4*part+1000, 3)
	killJournal = testData(200<<10, 4)
)

func TestKillChild(t *testing.T) {
	raw := os.Getenv(childEnv)
	if raw == "" {
		t.Skip("run by the kill tests as their child process")
	}
	var job childJob
	if err := json.Unmarshal([]byte(raw), &job); err != nil {
		t.Fatal(err)
	}
	var st store.Store
	var err error
	if job.S3 != nil {
		st, err = store.OpenS3(context.Background(), *job.S3)
	} else {
		st, err = store.OpenLocal(job.Local)
	}
	if err != nil {
		t.Fatal(err)
	}
	b := &Bucket{st: st, PartSize: part}
	ctx := context.Background()
	switch job.What {
	case "backup": // blocks in the middle of part 3
		f := File{Name: "base.tar.age", Size: int64(len(killBase)), Data: blocking{killBase, 2*part + part/2}}
		err = b.PutBackup(ctx, "ns", "b1", []byte("meta"), []File{f})
	case "flush": // one whole batch, then blocks in the middle of the second
		if _, err = b.FlushPartial(ctx, "ns", "seg", bytes.NewReader(killJournal), 100<<10, -1); err == nil {
			_, err = b.FlushPartial(ctx, "ns", "seg", blocking{killJournal, 150 << 10}, int64(len(killJournal)), -1)
		}
	}
	t.Fatalf("the child was not killed mid-request: %v", err)
}

// killMidRequest runs the child on job and SIGKILLs it once it blocked.
func killMidRequest(t *testing.T, job childJob) {
	t.Helper()
	raw, _ := json.Marshal(job)
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+string(raw))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	var seen []string
	for sc.Scan() && sc.Text() != "blocked" {
		seen = append(seen, sc.Text())
	}
	if sc.Text() != "blocked" {
		cmd.Wait()
		t.Fatalf("the child ended without blocking:\n%v\n%s", seen, stderr.String())
	}
	cmd.Process.Kill()
	cmd.Wait()
}

// eachStoreJob is eachStore with the job that reaches the same store.
func eachStoreJob(t *testing.T, what string, f func(t *testing.T, st store.Store)) {
	t.Run("local", func(t *testing.T) {
		dir := t.TempDir()
		killMidRequest(t, childJob{What: what, Local: dir})
		l, err := store.OpenLocal(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		f(t, l)
	})
	t.Run("s3", func(t *testing.T) {
		srv := storetest.StartVersityGW(t, storetest.Options{})
		cfg := srv.Config()
		killMidRequest(t, childJob{What: what, S3: &cfg})
		f(t, srv.Open(t))
	})
}

func TestKilledMidMultipartResumes(t *testing.T) {
	eachStoreJob(t, "backup", func(t *testing.T, st store.Store) {
		ctx := context.Background()
		c := &counting{Store: st}
		b := &Bucket{st: c, PartSize: part}
		if ids, _ := b.Backups(ctx, "ns"); len(ids) != 0 {
			t.Fatalf("backups after the kill: %v; want none", ids)
		}
		f := File{Name: "base.tar.age", Size: int64(len(killBase)), Data: bytes.NewReader(killBase)}
		if err := b.PutBackup(ctx, "ns", "b1", []byte("meta"), []File{f}); err != nil {
			t.Fatal(err)
		}
		checkResumed(t, st, c, "b1", killBase)
	})
}

func TestKilledMidFlushLosesAndDuplicatesNothing(t *testing.T) {
	eachStoreJob(t, "flush", func(t *testing.T, st store.Store) {
		ctx := context.Background()
		b := New(st)
		got, err := b.Partial(ctx, "ns", "seg", 1<<20)
		if err != nil || !bytes.Equal(got, killJournal[:100<<10]) {
			t.Fatalf("after the kill the bucket holds %d bytes (%v); want the first batch's %d", len(got), err, 100<<10)
		}
		n, err := b.FlushPartial(ctx, "ns", "seg", bytes.NewReader(killJournal), int64(len(killJournal)), -1)
		if err != nil || n != int64(len(killJournal)) {
			t.Fatalf("flush after the kill: %d, %v", n, err)
		}
		if got, _ := b.Partial(ctx, "ns", "seg", 1<<20); !bytes.Equal(got, killJournal) {
			t.Errorf("after resuming the bucket holds %d bytes differing from the journal's %d", len(got), len(killJournal))
		}
	})
}
