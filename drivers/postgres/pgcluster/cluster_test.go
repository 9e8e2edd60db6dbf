package pgcluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/drivers/postgres/pgcluster"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
	"github.com/clinicbox/clinicbox/drivers/testenv"
)

func TestClusterStarts(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{})
	ctx := context.Background()
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, tc := range []struct{ setting, want string }{
		{"wal_level", "replica"},
		{"track_commit_timestamp", "on"},
		{"data_checksums", "on"},
	} {
		var got string
		if err := conn.QueryRow(ctx, "SELECT current_setting($1)", tc.setting).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("%s = %q; want %q", tc.setting, got, tc.want)
		}
	}
	var repl bool
	if err := conn.QueryRow(ctx, "SELECT rolreplication FROM pg_roles WHERE rolname = $1", pgcluster.ReplUser).Scan(&repl); err != nil || !repl {
		t.Errorf("role %s replication = %v, %v; want true", pgcluster.ReplUser, repl, err)
	}
}

// A cluster made with WALSegMiB has WAL segments of that size.
func TestWALSegmentSize(t *testing.T) {
	opt := pgcluster.Options{WALSegMiB: 1}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := opt.Bin(ctx); err != nil {
		testenv.Skip(t, err.Error())
	}
	c, err := pgcluster.Start(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var got string
	if err := conn.QueryRow(ctx, "SHOW wal_segment_size").Scan(&got); err != nil || got != "1MB" {
		t.Errorf("wal_segment_size: got %q, %v; want 1MB", got, err)
	}
}
