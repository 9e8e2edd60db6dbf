package vault

import (
	"bytes"
	"context"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/vault/store"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
)

// evicting runs f with a vault that keeps files on disk for a day once
// the bucket holds them, on a clock starting now; the box has stored
// segments 0 to 3, part of 4 and a backup, all offloaded.
func evicting(t *testing.T, f func(t *testing.T, fx *fixture, st store.Store, clk *testClock)) {
	eachBucket(t, func(t *testing.T, fx *fixture, st store.Store) {
		clk := &testClock{now: time.Now()}
		fx.cfg.LocalKeep, fx.cfg.Now = 24*time.Hour, clk.Now
		fx.open()
		fx.createRepo("box:1")
		fx.storeWAL()
		fx.commitClaiming("20261122T101500Z", 1, 2*segSize+10, 1, 3*segSize)
		fx.offload()
		f(t, fx, st, clk)
	})
}

func (f *fixture) evict() {
	f.t.Helper()
	if err := f.v.Evict(context.Background()); err != nil {
		f.t.Fatal(err)
	}
}

// onDisk lists the repository's files on the node's disk, as a listing
// would (no temporary files or locks).
func (f *fixture) onDisk() []string {
	return slices.DeleteFunc(filesUnder(f.t, filepath.Join(f.dir, "boxes", "nBOX1", "repo")), func(p string) bool {
		return strings.HasPrefix(path.Base(p), ".")
	})
}

// readAll reads every listed file of the box's repository as a restore
// would.
func (f *fixture) readAll() ([]wire.FileEntry, map[string][]byte) {
	f.t.Helper()
	var list []wire.FileEntry
	if code := f.do("restore:1", "GET", "/v1/files?box=nBOX1", nil, &list); code != 200 {
		f.t.Fatalf("listing: %d", code)
	}
	data := map[string][]byte{}
	for _, e := range list {
		r := f.serve("restore:1", "GET", "/v1/files/"+e.Path+"?box=nBOX1", nil)
		if r.Code != 200 {
			f.t.Fatalf("reading %s: %d %s", e.Path, r.Code, r.Body)
		}
		data[e.Path] = r.Body.Bytes()
	}
	return list, data
}

// Files evicted from the node's disk are listed and read as before, from
// the bucket; what is younger than LocalKeep, the segment being filled
// and the backups' metadata stay on disk.
func TestEvictServesFromTheBucket(t *testing.T) {
	evicting(t, func(t *testing.T, f *fixture, st store.Store, clk *testClock) {
		listBefore, before := f.readAll()
		f.evict()
		if got := f.onDisk(); len(got) != len(listBefore) {
			t.Fatalf("evicted before LocalKeep ran out; left on disk: %v", got)
		}
		clk.add(25 * time.Hour)
		f.evict()
		left := f.onDisk()
		for _, e := range listBefore {
			onDisk := slices.Contains(left, e.Path)
			keep := !strings.HasSuffix(e.Path, ".age") || strings.Contains(e.Path, "00000004.partial")
			if onDisk != keep {
				t.Errorf("%s on disk after eviction: %v; want %v", e.Path, onDisk, keep)
			}
		}
		listAfter, after := f.readAll()
		if !slices.Equal(listAfter, listBefore) {
			t.Errorf("listing after eviction:\n%v\nwant\n%v", listAfter, listBefore)
		}
		for p, b := range before {
			if !bytes.Equal(after[p], b) {
				t.Errorf("%s read after eviction differs (%d bytes; want %d)", p, len(after[p]), len(b))
			}
		}
	})
}

// Retention removes evicted WAL before the oldest kept backup from the
// bucket, as it does WAL still on disk, and the listing drops it.
func TestRetentionRemovesEvictedWAL(t *testing.T) {
	evicting(t, func(t *testing.T, f *fixture, st store.Store, clk *testClock) {
		clk.add(25 * time.Hour)
		f.evict()
		pruneAndCheckBucket(t, f, st)
		list, _ := f.readAll()
		for _, e := range list {
			if strings.Contains(e.Path, "00000000.partial") || strings.Contains(e.Path, "00000001.partial") {
				t.Errorf("listed after retention removed it: %s", e.Path)
			}
		}
		if _, err := os.Stat(filepath.Join(f.dir, "boxes", "nBOX1", evictedRel)); err != nil {
			t.Errorf("no record of the evicted files: %v", err)
		}
	})
}

// A backup that arrives after the segment where it starts was evicted (a
// long upload on a slow line) is confirmed from the evicted record: the
// bucket holds the segment.
func TestBackupConfirmedAfterItsStartWasEvicted(t *testing.T) {
	evicting(t, func(t *testing.T, f *fixture, st store.Store, clk *testClock) {
		clk.add(25 * time.Hour)
		f.evict()
		if got := f.onDisk(); slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, "00000002.partial") }) {
			t.Fatalf("segment 2 still on disk: %v", got)
		}
		f.commitClaiming("20261123T101500Z", 1, 2*segSize+20, 1, 3*segSize)
		if a := f.arrival("20261123T101500Z"); a.Verified == nil {
			t.Errorf("backup starting in an evicted segment not confirmed: %+v", a.Checks)
		}
	})
}

// The trusted standby reads the node's disk: nothing is evicted until it
// replays, then only the WAL it replayed, never the newest backup it
// would restore from again.
func TestEvictKeepsWhatTheStandbyReads(t *testing.T) {
	evicting(t, func(t *testing.T, f *fixture, st store.Store, clk *testClock) {
		sb := &Standby{}
		sb.set(func(s *wire.StandbyStatus) { s.State = "restoring" })
		f.v.cfg.Standbys = map[string]*Standby{"nBOX1": sb}
		before := f.onDisk()
		clk.add(25 * time.Hour)
		f.evict()
		if got := f.onDisk(); len(got) != len(before) {
			t.Fatalf("evicted while the standby restores; left on disk %v of %v", got, before)
		}
		onDisk := func(seg string) bool {
			return slices.ContainsFunc(f.onDisk(), func(p string) bool { return strings.Contains(p, seg+".partial") })
		}
		sb.set(func(s *wire.StandbyStatus) { s.State, s.Replayed = "replaying", archive.LSN(2*segSize+100) })
		f.evict()
		for seg, want := range map[string]bool{"00000000": false, "00000001": false, "00000002": true, "00000003": true} {
			if got := onDisk(seg); got != want {
				t.Errorf("segment %s on disk with the standby replaying segment 2: %v; want %v", seg, got, want)
			}
		}
		if !slices.ContainsFunc(f.onDisk(), func(p string) bool { return strings.HasSuffix(p, ".age") && strings.Contains(p, "backups/") }) {
			t.Errorf("the newest backup's files were evicted: %v", f.onDisk())
		}
		sb.set(func(s *wire.StandbyStatus) { s.Replayed = archive.LSN(4 * segSize) })
		f.evict()
		if onDisk("00000002") || onDisk("00000003") {
			t.Errorf("segments 2 and 3 still on disk once replayed: %v", f.onDisk())
		}
	})
}
