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

// currentLSN is the server's current WAL insert position, after forcing
// the current segment out when switch is set.
func currentLSN(t *testing.T, c *pgtest.Cluster, switchWAL bool) postgres.LSN {
	t.Helper()
	ctx := context.Background()
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if switchWAL {
		if _, err := conn.Exec(ctx, "SELECT pg_switch_wal()"); err != nil {
			t.Fatal(err)
		}
	}
	var s string
	if err := conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&s); err != nil {
		t.Fatal(err)
	}
	var lsn postgres.LSN
	if err := lsn.Scan(s); err != nil {
		t.Fatal(err)
	}
	return lsn
}

// streamer runs Stream in the background and lets a test wait for a WAL
// position to be flushed.
type streamer struct {
	cancel  context.CancelFunc
	done    chan error
	mu      sync.Mutex
	tli     uint32
	flushed postgres.LSN
	tick    chan struct{}
}

func startStream(t *testing.T, opt StreamOptions) *streamer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &streamer{cancel: cancel, done: make(chan error, 1), tick: make(chan struct{}, 1)}
	opt.OnFlush = func(tli uint32, f postgres.LSN) {
		s.mu.Lock()
		s.tli, s.flushed = tli, f
		s.mu.Unlock()
		select {
		case s.tick <- struct{}{}:
		default:
		}
	}
	go func() { s.done <- Stream(ctx, opt) }()
	t.Cleanup(func() { s.stop(t) })
	return s
}

// waitFor blocks until WAL up to lsn on timeline tli is flushed.
func (s *streamer) waitFor(t *testing.T, tli uint32, lsn postgres.LSN) {
	t.Helper()
	timeout := time.NewTimer(2 * time.Minute)
	defer timeout.Stop()
	for {
		s.mu.Lock()
		ok := s.tli >= tli && s.flushed >= lsn
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-s.tick:
		case err := <-s.done:
			s.done <- err
			t.Fatalf("stream ended before %s: %v", lsn, err)
		case <-timeout.C:
			t.Fatalf("WAL up to %s on timeline %d not flushed in time (at %d/%s)", lsn, tli, s.tli, s.flushed)
		}
	}
}

func (s *streamer) stop(t *testing.T) {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	if err := <-s.done; err != nil {
		t.Errorf("stream: %v", err)
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
