package restore

import (
	"bytes"
	"context"
	"github.com/clinicbox/clinicbox/drivers/testenv"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/clinicbox/clinicbox/appliance/archive"
)

// segmentRepo stores count complete segments (from segment 1) of small
// size, and returns their contents.
func segmentRepo(t *testing.T, count int) (*archive.Repo, []age.Identity, [][]byte) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	r, err := archive.Create(filepath.Join(t.TempDir(), "repo"), archive.Info{SystemID: "7000000000000000003", SegmentSize: 1 << 16,
		ServerVersion: 150000, Recipients: []string{id.Recipient().String()}}, testSigner)
	if err != nil {
		t.Fatal(err)
	}
	w, err := r.WAL()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	size := archive.LSN(r.Info.SegmentSize)
	if err := w.Begin(1, size); err != nil {
		t.Fatal(err)
	}
	var segs [][]byte
	for i := range count {
		seg := bytes.Repeat([]byte{byte(i + 1), 0, 0, 7}, int(size)/4)
		if err := w.Write(size*archive.LSN(i+1), seg); err != nil {
			t.Fatal(err)
		}
		segs = append(segs, seg)
	}
	if _, err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return r, []age.Identity{id}, segs
}

// waitFor polls until cond holds or the test's patience runs out.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testenv.Patience(t))
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func cachedNames(dir string) []string {
	names, _ := filepath.Glob(filepath.Join(dir, "0*"))
	for i, n := range names {
		names[i] = filepath.Base(n)
	}
	return names
}

func TestPrefetch(t *testing.T) {
	r, ids, segs := segmentRepo(t, 8)
	name := func(segNo uint64) string { return archive.SegmentName(1, segNo, r.Info.SegmentSize) }
	// Segment 7 is damaged in the repository: never cached.
	bad := filepath.Join(r.Dir, "wal", "00000001", name(7)+".zst.age")
	raw, err := os.ReadFile(bad)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/2] ^= 0xff
	if err := os.WriteFile(bad, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "cache")
	start, err := WantSegment(dir, name(1))
	if err != nil || !start {
		t.Fatalf("WantSegment = %v, %v; want a prefetcher to start", start, err)
	}
	var idle atomic.Pointer[prefetchState]
	p := &Prefetch{Repo: r, Identities: ids, Dir: dir, Ahead: 3, Poll: time.Millisecond,
		looked: func(s prefetchState) { idle.Store(&s) }}
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()

	waitFor(t, "three segments cached", func() bool { return len(cachedNames(dir)) == 3 })
	if got, want := cachedNames(dir), []string{name(2), name(3), name(4)}; !equal(got, want) {
		t.Fatalf("cached %v; want %v", got, want)
	}
	if start, err := WantSegment(dir, name(1)); err != nil || start {
		t.Errorf("WantSegment with a prefetcher running = %v, %v; want no second one", start, err)
	}
	for segNo := uint64(2); segNo <= 6; segNo++ {
		// Recovery takes a segment with a rename.
		waitFor(t, name(segNo)+" cached", func() bool { _, err := os.Stat(filepath.Join(dir, name(segNo))); return err == nil })
		got, err := os.ReadFile(filepath.Join(dir, name(segNo)))
		if err != nil || !bytes.Equal(got, segs[segNo-1]) {
			t.Fatalf("cached %s differs from the stored segment (%v)", name(segNo), err)
		}
		if err := os.Rename(filepath.Join(dir, name(segNo)), filepath.Join(t.TempDir(), "RECOVERYXLOG")); err != nil {
			t.Fatal(err)
		}
	}
	// The prefetcher's own word that it stopped at the damaged segment
	// and saw the cache empty, not a pause that a slow run outlasts.
	waitFor(t, "the prefetcher to stop at "+name(7), func() bool {
		s := idle.Load()
		return s != nil && s.stuck && s.next == 7 && s.cached == 0
	})
	if got := cachedNames(dir); len(got) != 0 {
		t.Errorf("cached %v; want nothing at or after the damaged segment", got)
	}
	// wal-fetch serves segment 8 itself (after refusing 7 in real life):
	// the prefetcher goes on from there and drops what recovery passed.
	if _, err := WantSegment(dir, name(8)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "stale entries dropped", func() bool { return len(cachedNames(dir)) == 0 })
	// Recovery's end removes the cache; the prefetcher ends.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("prefetcher ended with %v; want nil", err)
		}
	case <-time.After(testenv.Patience(t)):
		t.Fatal("prefetcher still running after its cache was removed")
	}
}

func TestPrefetchEndsWhenIdle(t *testing.T) {
	r, ids, _ := segmentRepo(t, 2)
	dir := filepath.Join(t.TempDir(), "cache")
	if _, err := WantSegment(dir, archive.SegmentName(1, 1, r.Info.SegmentSize)); err != nil {
		t.Fatal(err)
	}
	p := &Prefetch{Repo: r, Identities: ids, Dir: dir, Idle: 50 * time.Millisecond, Poll: time.Millisecond}
	start := time.Now()
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("idle prefetcher ran %s; want it to end after about 50ms", d)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
