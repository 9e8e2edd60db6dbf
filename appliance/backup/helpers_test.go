package backup

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/drivers/postgres"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
)

// testKey makes an age key for a test: the recipient to write with and the
// identity to read with.
func testKey(t *testing.T) (string, []age.Identity) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id.Recipient().String(), []age.Identity{id}
}

// load runs a pgbench workload until the test ends.
func load(t *testing.T, c *pgtest.Cluster, clients string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := c.Pgbench(ctx, "-c", clients, "-T", "600"); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// currentLSN is the server's current WAL position, after forcing the
// current segment out when switchWAL is set.
func currentLSN(t *testing.T, c *pgtest.Cluster, switchWAL bool) postgres.LSN {
	t.Helper()
	l, err := c.CurrentLSN(context.Background(), switchWAL)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// streamer runs Stream in the background and lets a test wait for a WAL
// position to be stored.
type streamer struct {
	*Flushes
	cancel context.CancelFunc
	ended  chan struct{}
	err    error
}

func startStream(t *testing.T, opt StreamOptions) *streamer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &streamer{Flushes: NewFlushes(), cancel: cancel, ended: make(chan struct{})}
	opt.OnFlush = s.Record
	go func() { s.err = Stream(ctx, opt); close(s.ended) }()
	t.Cleanup(func() { s.stop(t) })
	return s
}

// waitFor blocks until WAL up to lsn on timeline tli is stored.
func (s *streamer) waitFor(t *testing.T, tli uint32, lsn postgres.LSN) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.Wait(ctx, tli, lsn, s.ended, func() error { return s.err }); err != nil {
		tl, at := s.Position()
		t.Fatalf("WAL up to %s on timeline %d not stored (at %d/%s): %v", lsn, tli, tl, at, err)
	}
}

func (s *streamer) stop(t *testing.T) {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	<-s.ended
	if s.err != nil {
		t.Errorf("stream: %v", s.err)
	}
}

// exportWAL decrypts the segments from first to last (inclusive) into dir.
func exportWAL(t *testing.T, repo *archive.Repo, ids []age.Identity, tli uint32, from, to postgres.LSN, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	size := repo.Info.SegmentSize
	for seg := uint64(from) / size; seg <= uint64(to-1)/size; seg++ {
		name := segmentName(tli, seg, size)
		if err := repo.FetchWAL(name, filepath.Join(dir, name), ids); err != nil {
			t.Fatal(err)
		}
	}
}

func segmentName(tli uint32, seg, size uint64) string {
	per := 0x100000000 / size
	return fmtSeg(tli, seg/per, seg%per)
}
