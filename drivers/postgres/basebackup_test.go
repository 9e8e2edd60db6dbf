package postgres_test

import (
	"context"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/clinicbox/clinicbox/drivers/postgres"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
)

// discardSink takes a base backup's archives and keeps nothing.
type discardSink struct{}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func (discardSink) Archive(string, string) (io.WriteCloser, error) { return nopCloser{io.Discard}, nil }
func (discardSink) Manifest() (io.WriteCloser, error)              { return nopCloser{io.Discard}, nil }

// readCalls is how many read system calls this process has made.
func readCalls(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Skipf("no /proc/self/io to count read calls: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "syscr: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("/proc/self/io has no syscr: %q", b)
	return 0
}

// A base backup is read in large batches: the server sends it in messages
// of a few KB, faster than it compresses or than a drive takes it but
// slower than the reader, which woke for each and read about 20 KB at a
// time, two read calls each.
func TestBaseBackupReadsInLargeBatches(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{})
	c.MustExec(t, "CREATE TABLE filler AS SELECT g, md5(g::text) || repeat('x', 300) AS pad FROM generate_series(1, 150000) g", "CHECKPOINT")
	ctx := context.Background()
	conn, err := postgres.Connect(ctx, c.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	before := readCalls(t)
	res, err := conn.BaseBackup(ctx, postgres.BackupOptions{Label: "batches", ServerZstdLevel: 1}, discardSink{})
	if err != nil {
		t.Fatal(err)
	}
	reads := readCalls(t) - before
	if limit := res.Received / (24 << 10); reads > limit {
		t.Errorf("%d read calls for %d bytes of backup (%d per call); want at most %d", reads, res.Received, res.Received/max(reads, 1), limit)
	}
	t.Logf("%d read calls for %d bytes", reads, res.Received)
}
