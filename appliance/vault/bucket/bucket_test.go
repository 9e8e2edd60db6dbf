package bucket

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/clinicbox/clinicbox/appliance/vault/store"
	"github.com/clinicbox/clinicbox/appliance/vault/store/storetest"
)

// eachStore runs f against the local store and the S3 store on a real
// versitygw.
var eachStore = storetest.Each

// counting counts the parts uploaded through it.
type counting struct {
	store.Store
	parts atomic.Int32
}

func (c *counting) UploadPart(ctx context.Context, key, id string, num int, r io.Reader, size int64) (store.Part, error) {
	c.parts.Add(1)
	return c.Store.UploadPart(ctx, key, id, num, r, size)
}

// failingAt reads data but fails every read at or past off.
type failingAt struct {
	data []byte
	off  int64
}

var errCut = errors.New("connection to the box lost")

func (f failingAt) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.off {
		return 0, errCut
	}
	return copy(p, f.data[off:]), nil
}

func testData(n int, seed byte) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{seed}).Read(b)
	return b
}

// checkResumed checks that a backup's upload was resumed with its last
// three parts only and is stored whole and committed.
func checkResumed(t *testing.T, st store.Store, c *counting, id string, data []byte) {
	t.Helper()
	if got := c.parts.Load(); got != 3 {
		t.Errorf("resuming uploaded %d parts; want 3 (parts 1 and 2 were stored)", got)
	}
	if ids, _ := New(st).Backups(context.Background(), "ns"); !slices.Equal(ids, []string{id}) {
		t.Errorf("backups: %v; want [%s]", ids, id)
	}
	if !bytes.Equal(readObject(t, st, "ns/backups/"+id+"/base.tar.age"), data) {
		t.Error("the resumed base backup differs from the one sent")
	}
	if ups, _ := st.ListUploads(context.Background(), ""); len(ups) != 0 {
		t.Errorf("uploads left: %v", ups)
	}
}

func readObject(t *testing.T, st store.Store, key string) []byte {
	t.Helper()
	data, err := store.ReadAll(context.Background(), st, key, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

const part = store.MinPartSize

func TestBackupInvisibleUntilCommittedAndResumed(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		c := &counting{Store: st}
		b := &Bucket{st: c, PartSize: part}
		base := testData(4*part+1000, 1) // five parts
		meta := []byte(`{"id":"b1"}`)
		cut := []File{{Name: "sealed.age", Size: 100, Data: bytes.NewReader(make([]byte, 100))},
			{Name: "base.tar.age", Size: int64(len(base)), Data: failingAt{base, 2*part + 10}}}
		if err := b.PutBackup(ctx, "ns", "b1", meta, cut); !errors.Is(err, errCut) {
			t.Fatalf("upload cut in part 3: %v; want the cut", err)
		}
		if ids, err := b.Backups(ctx, "ns"); err != nil || len(ids) != 0 {
			t.Fatalf("backups after a cut upload: %v, %v; want none", ids, err)
		}
		c.parts.Store(0)
		whole := []File{cut[0], {Name: "base.tar.age", Size: int64(len(base)), Data: bytes.NewReader(base)}}
		if err := b.PutBackup(ctx, "ns", "b1", meta, whole); err != nil {
			t.Fatal(err)
		}
		checkResumed(t, st, c, "b1", base)
		if err := b.PutBackup(ctx, "ns", "b1", meta, whole); err != nil {
			t.Errorf("committing the same backup again: %v; want success", err)
		}
		if err := b.PutBackup(ctx, "ns", "b1", []byte(`{"id":"other"}`), whole); err == nil {
			t.Error("a different backup.json under a stored ID was accepted")
		}
	})
}

func TestDeleteBackup(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		b := New(st)
		f := []File{{Name: "a.age", Size: 3, Data: bytes.NewReader([]byte("abc"))}}
		for _, id := range []string{"b1", "b2"} {
			if err := b.PutBackup(ctx, "ns", id, []byte(id), f); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.DeleteBackup(ctx, "ns", "b1"); err != nil {
			t.Fatal(err)
		}
		if ids, _ := b.Backups(ctx, "ns"); !slices.Equal(ids, []string{"b2"}) {
			t.Errorf("backups after deleting b1: %v; want [b2]", ids)
		}
		st.List(ctx, "ns/backups/b1/", func(fi store.Info) error {
			t.Errorf("%s left behind", fi.Key)
			return nil
		})
	})
}

func TestFlushPartialThenSegment(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		b := New(st)
		journal := testData(64<<10, 2)
		var held int64
		for _, size := range []int64{100, 100, 5000, 30000, 64 << 10} {
			n, err := b.FlushPartial(ctx, "ns", "seg1", bytes.NewReader(journal), size, -1)
			if err != nil || n != size {
				t.Fatalf("flush to %d: %d, %v", size, n, err)
			}
			held = n
		}
		got, err := b.Partial(ctx, "ns", "seg1", 1<<20)
		if err != nil || !bytes.Equal(got, journal[:held]) {
			t.Fatalf("partial: %d bytes, %v; want the journal's %d", len(got), err, held)
		}
		var batches int
		st.List(ctx, batchPrefix("ns", "seg1"), func(store.Info) error { batches++; return nil })
		if batches != 4 { // the second flush of 100 bytes had nothing new
			t.Errorf("%d batches; want 4", batches)
		}
		if err := b.PutSegment(ctx, "ns", "seg1", bytes.NewReader(journal), int64(len(journal))); err != nil {
			t.Fatal(err)
		}
		if err := b.PutSegment(ctx, "ns", "seg1", bytes.NewReader(journal), int64(len(journal))); err != nil {
			t.Errorf("storing the same segment again: %v; want success", err)
		}
		if seg, err := b.Segment(ctx, "ns", "seg1", 1<<20); err != nil || !bytes.Equal(seg, journal) {
			t.Errorf("segment: %d bytes, %v", len(seg), err)
		}
		if got, _ := b.Partial(ctx, "ns", "seg1", 1<<20); len(got) != 0 {
			t.Errorf("%d bytes of batches left after the segment was stored", len(got))
		}
	})
}

// A node that lost its lease and wrote a batch anyway leaves two batches
// at one offset: readers stop before them, and the next flush reports it
// instead of continuing from either.
func TestTwoBatchesAtOneOffset(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		b := New(st)
		ours := bytes.Repeat([]byte{1}, 3000)
		if _, err := b.FlushPartial(ctx, "ns", "seg", bytes.NewReader(ours), 1000, 800); err != nil {
			t.Fatal(err)
		}
		if _, err := b.FlushPartial(ctx, "ns", "seg", bytes.NewReader(ours), 2000, 1600); err != nil {
			t.Fatal(err)
		}
		stale := bytes.Repeat([]byte{2}, 1500)
		if _, err := st.PutIfAbsent(ctx, batchPrefix("ns", "seg")+batchName(1000, 1100), bytes.NewReader(stale), 1500); err != nil {
			t.Fatal(err)
		}
		got, err := b.Partial(ctx, "ns", "seg", 1<<20)
		if err != nil || !bytes.Equal(got, ours[:1000]) {
			t.Errorf("partial: %d bytes, %v; want the 1000 bytes before the two batches at 1000", len(got), err)
		}
		if _, err := b.FlushPartial(ctx, "ns", "seg", bytes.NewReader(ours), 3000, 2400); !errors.Is(err, ErrTwoWriters) {
			t.Errorf("flush past two batches at one offset: %v; want ErrTwoWriters", err)
		}
	})
}

// A flush whose answer was lost leaves the bucket ahead of a journal that
// was cut back: the next flush reports it, and after the trim it goes on.
func TestFlushAheadOfTheJournal(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		b := New(st)
		old := bytes.Repeat([]byte{1}, 2000)
		if _, err := b.FlushPartial(ctx, "ns", "seg", bytes.NewReader(old), 2000, 1000); err != nil {
			t.Fatal(err)
		}
		now := append(bytes.Repeat([]byte{1}, 1000), bytes.Repeat([]byte{3}, 1200)...)
		if _, err := b.FlushPartial(ctx, "ns", "seg", bytes.NewReader(now), 1000, 500); !errors.Is(err, ErrAhead) {
			t.Fatalf("flush of a journal shorter than the bucket's copy: %v; want ErrAhead", err)
		}
		if err := b.TrimBatches(ctx, "ns", "seg", 1000); err != nil {
			t.Fatal(err)
		}
		if _, err := b.FlushPartial(ctx, "ns", "seg", bytes.NewReader(now), 2200, 1100); err != nil {
			t.Fatal(err)
		}
		if got, _ := b.Partial(ctx, "ns", "seg", 1<<20); !bytes.Equal(got, now) {
			t.Errorf("after the trim the bucket holds %d bytes differing from the journal's %d", len(got), len(now))
		}
	})
}
