package vault

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/vault/store"
	"github.com/clinicbox/clinicbox/appliance/vault/store/storetest"
)

// takeBack has b take the box over from a, b's box sending more records
// (0 for none), then a take it back once b's lease ran out: a sets its
// own directory aside. It returns the set-aside directory.
func takeBack(t *testing.T, clk *testClock, a, b *fixture, box *streamer, more int) string {
	t.Helper()
	clk.add(testTTL + time.Second) // a is paused
	if code := box.send(b, more); code != 200 {
		t.Fatalf("streaming to b after a's lease ran out: %d", code)
	}
	b.offload()
	clk.add(testTTL + time.Second) // b is gone
	if code := a.do("box:1", "GET", "/v1/wal", nil, nil); code != 200 {
		t.Fatalf("a taking the box back: %d", code)
	}
	ents, _ := os.ReadDir(filepath.Join(a.dir, "boxes", staleDir))
	if len(ents) != 1 || !strings.HasPrefix(ents[0].Name(), "nBOX1-") {
		t.Fatalf("set aside on a: %v; want the one directory of nBOX1", ents)
	}
	return filepath.Join(a.dir, "boxes", staleDir, ents[0].Name())
}

// filesUnder lists the files under dir, relative to it, slash-separated.
func filesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out
}

func dropStale(t *testing.T, f *fixture) {
	t.Helper()
	if _, err := f.v.DropStale(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Node a's directory, set aside when a takes the box back from b, holds
// nothing the bucket lacks (b stored the records a had acknowledged
// again): it stays whole for StaleGrace, then goes.
func TestStaleRemovedOnceTheBucketHoldsIt(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		clk, a, b, box := twoNodes(t, st)
		if code := box.send(a, 2*recordSize); code != 200 { // in a's journal only
			t.Fatalf("streaming to a: %d", code)
		}
		box.sent = 4 * recordSize // the box sends those two again to b
		dir := takeBack(t, clk, a, b, box, 2*recordSize)
		before := filesUnder(t, dir)
		clk.add(StaleGrace - time.Hour)
		dropStale(t, a)
		if got := filesUnder(t, dir); len(got) != len(before) || len(got) == 0 {
			t.Errorf("set-aside files before the grace ran out: %v; want all of %v", got, before)
		}
		clk.add(2 * time.Hour)
		dropStale(t, a)
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("the set-aside directory is still there after the grace, holding %v", filesUnder(t, dir))
		}
	})
}

// Node a acknowledged records it never stored in the bucket, and b got
// none of them again: a's set-aside copy of that segment stays past the
// grace, unchanged, while what the bucket holds of the directory goes.
func TestStaleKeptWhileTheBucketLacksIt(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		clk, a, b, box := twoNodes(t, st)
		if code := box.send(a, 2*recordSize); code != 200 { // in a's journal only
			t.Fatalf("streaming to a: %d", code)
		}
		dir := takeBack(t, clk, a, b, box, 0)
		seg := ""
		for _, f := range filesUnder(t, dir) {
			if strings.HasSuffix(f, partialSegment) {
				seg = f
			}
		}
		if seg == "" {
			t.Fatalf("no segment in the set-aside directory: %v", filesUnder(t, dir))
		}
		want, _ := os.ReadFile(filepath.Join(dir, seg))
		clk.add(StaleGrace + time.Hour)
		dropStale(t, a)
		got, err := os.ReadFile(filepath.Join(dir, seg))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("the set-aside segment holding WAL the bucket lacks: %v; want it kept unchanged", err)
		}
		if left := filesUnder(t, dir); len(left) != 1 {
			t.Errorf("left in the set-aside directory: %v; want only %s", left, seg)
		}
	})
}
