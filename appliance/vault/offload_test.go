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
	"github.com/clinicbox/clinicbox/appliance/vault/bucket"
	"github.com/clinicbox/clinicbox/appliance/vault/store"
	"github.com/clinicbox/clinicbox/appliance/vault/store/storetest"
	"github.com/clinicbox/clinicbox/appliance/vault/wire"
)

// eachBucket runs f with a vault offloading into a local store and into
// a real versitygw.
func eachBucket(t *testing.T, f func(t *testing.T, fx *fixture, st store.Store)) {
	storetest.Each(t, func(t *testing.T, st store.Store) {
		fx := newFixture(t)
		fx.cfg.Bucket = bucket.New(st)
		fx.open()
		f(t, fx, st)
	})
}

func (f *fixture) offload() {
	f.t.Helper()
	if err := f.v.Offload(context.Background()); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) repoFile(rel string) []byte {
	f.t.Helper()
	data, err := os.ReadFile(filepath.Join(f.dir, "boxes", "nBOX1", "repo", rel))
	if err != nil {
		f.t.Fatal(err)
	}
	return data
}

// The growing segment reaches the bucket in batches, the complete one as
// one object, and each batch holds what the box was acknowledged for.
func TestOffloadWAL(t *testing.T) {
	eachBucket(t, func(t *testing.T, f *fixture, st store.Store) {
		ctx := context.Background()
		bk := bucket.New(st)
		f.createRepo("box:1")
		f.do("box:1", "POST", "/v1/wal/begin?tli=1&lsn=0", nil, nil)
		seg0 := archive.WALFile(segSize, 1, 0, archive.WALPartial)
		name := strings.TrimPrefix(filepath.ToSlash(seg0), "wal/")
		off := 0
		for round := range 3 {
			for range 3 {
				if code, p := f.record("box:1", 0, off, walBytes(100_000, byte(off))); code != 200 {
					t.Fatalf("record at %d: %d %+v", off, code, p)
				}
				off += 100_000
			}
			f.offload()
			got, err := bk.Partial(ctx, "nBOX1", name, 64<<20)
			if want := f.repoFile(seg0); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("round %d: the bucket holds %d bytes of the segment (%v); want the journal's %d", round, len(got), err, len(want))
			}
		}
		for off < segSize { // fill the segment
			n := min(100_000, segSize-off)
			f.record("box:1", 0, off, walBytes(n, byte(off)))
			off += n
		}
		f.record("box:1", 1, 0, walBytes(1000, 9))
		f.offload()
		whole, err := bk.Segment(ctx, "nBOX1", name, 64<<20)
		if err != nil || !bytes.Equal(whole, f.repoFile(seg0)) {
			t.Errorf("the complete segment in the bucket: %d bytes, %v; want the journal's", len(whole), err)
		}
		if left, _ := bk.Partial(ctx, "nBOX1", name, 64<<20); len(left) != 0 {
			t.Errorf("%d bytes of batches left for a complete segment", len(left))
		}
		if _, err := st.Stat(ctx, "nBOX1/clinicbox-repo.json"); err != nil {
			t.Errorf("the repository's description is not in the bucket: %v", err)
		}
	})
}

// A committed backup reaches the bucket with its backup.json written
// last; an upload in progress does not.
func TestOffloadBackup(t *testing.T) {
	eachBucket(t, func(t *testing.T, f *fixture, st store.Store) {
		ctx := context.Background()
		bk := bucket.New(st)
		f.createRepo("box:1")
		data := walBytes(5000, 4)
		meta := f.startBackup(data)
		const base = "/v1/backups/20261122T101500Z"
		f.do("box:1", "PUT", base+"/files/base.tar.zst.age?offset=0", data, nil)
		f.do("box:1", "PUT", base+"/files/backup.json.age?offset=0", append([]byte("age-encryption.org/v1\n"), 1, 2, 3), nil)
		f.offload()
		if ids, _ := bk.Backups(ctx, "nBOX1"); len(ids) != 0 {
			t.Fatalf("an uncommitted backup reached the bucket: %v", ids)
		}
		if code := f.do("box:1", "POST", base+"/commit", nil, nil); code != 200 {
			t.Fatalf("commit: %d", code)
		}
		f.offload()
		f.offload() // a second pass finds it stored and leaves it
		if ids, _ := bk.Backups(ctx, "nBOX1"); !slices.Equal(ids, []string{"20261122T101500Z"}) {
			t.Fatalf("backups in the bucket: %v; want the committed one", ids)
		}
		if got, err := bk.Meta(ctx, "nBOX1", "20261122T101500Z"); err != nil || !bytes.Equal(got, meta) {
			t.Errorf("backup.json in the bucket: %q, %v", got, err)
		}
		if got, _ := store.ReadAll(ctx, st, "nBOX1/backups/20261122T101500Z/base.tar.zst.age", 1<<20); !bytes.Equal(got, data) {
			t.Error("the base backup in the bucket differs from the one uploaded")
		}
	})
}

// The S3 server goes away for a while and comes back on the same
// directory: the box is acknowledged all along (the journal holds the
// WAL), offloading fails meanwhile, and the first pass after the server
// is back stores everything, once.
func TestOffloadCatchesUpAfterServerOutage(t *testing.T) {
	srv := storetest.StartVersityGW(t, storetest.Options{})
	st := srv.Open(t)
	f := newFixture(t)
	f.cfg.Bucket = bucket.New(st)
	f.open()
	f.createRepo("box:1")
	f.do("box:1", "POST", "/v1/wal/begin?tli=1&lsn=0", nil, nil)
	seg0 := archive.WALFile(segSize, 1, 0, archive.WALPartial)
	name := strings.TrimPrefix(filepath.ToSlash(seg0), "wal/")
	f.record("box:1", 0, 0, walBytes(1000, 1))
	f.offload()
	srv.Kill()
	for i := range 5 {
		if code, p := f.record("box:1", 0, 1000+i*1000, walBytes(1000, byte(i))); code != 200 {
			t.Fatalf("record %d with the S3 server down: %d %+v; want it acknowledged", i, code, p)
		}
	}
	if err := f.v.Offload(context.Background()); err == nil {
		t.Fatal("offloading with the S3 server down succeeded")
	}
	srv.Start()
	f.offload()
	got, err := bucket.New(st).Partial(context.Background(), "nBOX1", name, 64<<20)
	if want := f.repoFile(seg0); err != nil || !bytes.Equal(got, want) {
		t.Errorf("after the outage the bucket holds %d bytes (%v); want the journal's %d", len(got), err, len(want))
	}
}

// A pass over a box that sent nothing since the last one makes no
// request: a provider pays per request.
func TestOffloadIdleBoxCostsNoRequests(t *testing.T) {
	st, err := store.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	counted := &requests{Store: st}
	f := newFixture(t)
	f.cfg.Bucket = bucket.New(counted)
	f.open()
	f.createRepo("box:1")
	f.do("box:1", "POST", "/v1/wal/begin?tli=1&lsn=0", nil, nil)
	f.record("box:1", 0, 0, walBytes(1000, 1))
	f.offload()
	counted.n.Store(0)
	f.offload()
	if n := counted.n.Load(); n != 0 {
		t.Errorf("an idle pass made %d requests; want 0", n)
	}
	f.record("box:1", 0, 1000, walBytes(1000, 2))
	f.offload()
	if n := counted.n.Load(); n == 0 || n > 4 {
		t.Errorf("a pass after one record made %d requests; want 1 to 4", n)
	}
}

// What retention removes from the directory goes from the bucket too, on
// the next pass; what it keeps stays.
func TestOffloadFollowsRetention(t *testing.T) {
	eachBucket(t, func(t *testing.T, f *fixture, st store.Store) {
		ctx := context.Background()
		f.createRepo("box:1")
		f.storeWAL()
		f.commitClaiming("20261122T101500Z", 1, 2*segSize+10, 1, 3*segSize)
		f.offload()
		pruneAndCheckBucket(t, f, st)
		if ids, _ := bucket.New(st).Backups(ctx, "nBOX1"); len(ids) != 1 {
			t.Errorf("backups in the bucket: %v; want the kept one", ids)
		}
	})
}

// backupInBucket has the box send segments 0 to 3 and 1000 bytes of 4,
// commit a backup needing segments 2 and 3, and the node offload it all.
func (f *fixture) backupInBucket() {
	f.t.Helper()
	f.createRepo("box:1")
	f.storeWAL()
	f.commitClaiming("20261122T101500Z", 1, 2*segSize+10, 1, 3*segSize)
	f.offload()
}

// rebuiltFrom is a replacement node for f with an empty directory, the
// box's namespace read back from the bucket.
func rebuiltFrom(t *testing.T, f *fixture, st store.Store) *fixture {
	t.Helper()
	g := newFixture(t)
	g.cfg.Bucket = f.cfg.Bucket
	g.open()
	if _, err := g.v.Rehydrate(context.Background(), st, "nBOX1"); err != nil {
		t.Fatal(err)
	}
	return g
}

// A new vault node with an empty directory gets a box's repository back
// from the bucket: the committed backup, the complete segments and what
// was flushed of the segment being filled, from where the box goes on.
func TestRehydrateFromBucket(t *testing.T) {
	eachBucket(t, func(t *testing.T, f *fixture, st store.Store) {
		f.backupInBucket()
		var before []wire.FileEntry
		f.do("restore:1", "GET", "/v1/files?box=nBOX1", nil, &before)
		g := rebuiltFrom(t, f, st)
		var after []wire.FileEntry
		g.do("restore:1", "GET", "/v1/files?box=nBOX1", nil, &after)
		want := slices.DeleteFunc(slices.Clone(before), func(e wire.FileEntry) bool {
			return strings.HasPrefix(e.Path, "wal/state.json")
		})
		if !slices.Equal(after, want) {
			t.Errorf("files after rehydrating:\n%v\nwant\n%v", after, want)
		}
		var pos wire.Position
		g.do("box:1", "GET", "/v1/wal", nil, &pos)
		if pos.Durable != 4*segSize+1000 {
			t.Errorf("the rehydrated vault's WAL position %s; want the end of the flushed WAL, 1000 bytes into segment 4", pos.Durable)
		}
		if _, err := g.v.Rehydrate(context.Background(), st, "nBOX1"); err == nil {
			t.Error("rehydrating a namespace that holds a repository succeeded")
		}
	})
}

// A vault rebuilt from the bucket has no arrival records of its own: it
// makes them again from what it read back, so retention removes the WAL
// the kept backup does not need there too, not nothing.
func TestRehydratedVaultPrunes(t *testing.T) {
	eachBucket(t, func(t *testing.T, f *fixture, st store.Store) {
		f.backupInBucket()
		g := rebuiltFrom(t, f, st)
		pruneAndCheckBucket(t, g, st)
		if got, want := g.segments(), []uint64{2, 3, 4}; !slices.Equal(got, want) {
			t.Errorf("segments on the rebuilt vault after retention: %v; want %v", got, want)
		}
	})
}

// pruneAndCheckBucket applies retention 40 days on, offloads, and checks
// that the bucket holds the WAL segments the kept backup needs, 2 and 3
// (4 is still being filled), and no others.
func pruneAndCheckBucket(t *testing.T, f *fixture, st store.Store) {
	t.Helper()
	if _, err := f.v.Prune(time.Now().Add(40 * 24 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	f.offload()
	var segs []string
	st.List(context.Background(), "nBOX1/wal/", func(fi store.Info) error {
		if strings.HasSuffix(fi.Key, archive.WALPartial) {
			segs = append(segs, path.Base(fi.Key)[16:24])
		}
		return nil
	})
	if want := []string{"00000002", "00000003"}; !slices.Equal(segs, want) {
		t.Errorf("segments in the bucket after retention: %v; want %v (4 is still being filled)", segs, want)
	}
}
