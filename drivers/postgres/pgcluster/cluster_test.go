package pgcluster_test

import (
	"context"
	"testing"

	"github.com/clinicbox/clinicbox/drivers/postgres/pgcluster"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
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
