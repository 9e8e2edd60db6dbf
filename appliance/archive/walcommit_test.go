package archive

import (
	"errors"
	"os"
	"testing"
	"time"
)

// blockCommitOf makes the committer wait before committing the segment at
// path until release is closed, and says when it started waiting.
func blockCommitOf(t *testing.T, path string, release <-chan struct{}, waiting chan<- struct{}) {
	t.Helper()
	commitSegment = func(c commitJob) error {
		if c.out.path == path {
			close(waiting)
			<-release
		}
		return c.commit()
	}
	t.Cleanup(func() { commitSegment = commitJob.commit })
}

// waitCommitting waits until n segments are with the committer, failing
// the test if the writer does not get there (after letting the blocked
// commit go, so that the writer can close).
func waitCommitting(t *testing.T, w *WALWriter, n int, release chan struct{}) {
	t.Helper()
	stuck := time.AfterFunc(time.Minute, func() {
		w.work.qmu.Lock()
		w.work.idle.Broadcast()
		w.work.qmu.Unlock()
	})
	defer stuck.Stop()
	deadline := time.Now().Add(time.Minute)
	w.work.qmu.Lock()
	defer w.work.qmu.Unlock()
	for w.work.committing < n {
		if time.Now().After(deadline) {
			close(release)
			t.Fatalf("%d segments with the committer, want %d: the writer waited for a segment's fsync", w.work.committing, n)
		}
		w.work.idle.Wait()
	}
}

// writerAtSegment3 opens r's WAL for writing at the start of segment 3 of
// timeline 1; the test closes it.
func writerAtSegment3(t *testing.T, r *Repo) (*WALWriter, LSN) {
	t.Helper()
	w, err := r.WAL()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	start := LSN(3 * r.Info.SegmentSize)
	if err := w.Begin(1, start); err != nil {
		t.Fatal(err)
	}
	return w, start
}

// While one segment's fsync is slow (a USB drive), the next segment is
// written and sealed; a flush returns only once both are durable.
func TestNextSegmentWrittenWhileOneCommits(t *testing.T) {
	r, ids := testRepo(t)
	seg := int(r.Info.SegmentSize)
	release, waiting := make(chan struct{}), make(chan struct{})
	blockCommitOf(t, r.segPath(1, 3, segSuffix), release, waiting)
	w, start := writerAtSegment3(t, r)
	data := walBytes(2*seg+1000, 5)
	if err := w.Write(start, data); err != nil {
		t.Fatal(err)
	}
	<-waiting
	waitCommitting(t, w, 2, release) // segment 4 sealed and handed over while 3 waits

	released := make(chan bool, 1)
	flushed := make(chan error, 1)
	go func() {
		end, err := w.Flush()
		if err == nil && end != start+LSN(len(data)) {
			err = errors.New("flush returned " + end.String())
		}
		select {
		case <-release:
			released <- true
		default:
			released <- false
		}
		flushed <- err
	}()
	close(release)
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if !<-released {
		t.Fatal("Flush returned while a complete segment was still being committed")
	}
	for segNo := uint64(3); segNo <= 4; segNo++ {
		sd, err := r.ReadSegment(1, segNo, ids)
		if err != nil || sd.Partial || sd.Valid != seg {
			t.Fatalf("segment %d: %+v %v; want complete", segNo, sd, err)
		}
	}
}

// A segment whose commit fails leaves no later segment committed beyond
// it (a resumed stream starts after the highest segment stored), and the
// failure reaches the next flush.
func TestFailedCommitStopsLaterSegments(t *testing.T) {
	r, _ := testRepo(t)
	seg := int(r.Info.SegmentSize)
	failed := r.segPath(1, 3, segSuffix)
	commitSegment = func(c commitJob) error {
		if c.out.path == failed {
			c.out.Abort()
			return errors.New("injected: fsync failed")
		}
		return c.commit()
	}
	t.Cleanup(func() { commitSegment = commitJob.commit })
	w, start := writerAtSegment3(t, r)
	if err := w.Write(start, walBytes(3*seg+10, 6)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Flush(); err == nil {
		t.Fatal("Flush succeeded after a segment's commit failed")
	}
	for segNo := uint64(3); segNo <= 5; segNo++ {
		if _, err := os.Stat(r.segPath(1, segNo, segSuffix)); !os.IsNotExist(err) {
			t.Errorf("segment %d stored after segment 3's commit failed (stat: %v)", segNo, err)
		}
	}
	if _, at, ok, err := w.Resume(); err != nil || (ok && at > start) {
		t.Fatalf("resume = %s %v %v; want nothing beyond %s", at, ok, err, start)
	}
}
