package pgtest

import (
	"context"
	"testing"
)

func TestClusterStarts(t *testing.T) {
	c := New(t, Options{})
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
	if err := conn.QueryRow(ctx, "SELECT rolreplication FROM pg_roles WHERE rolname = $1", ReplUser).Scan(&repl); err != nil || !repl {
		t.Errorf("role %s replication = %v, %v; want true", ReplUser, repl, err)
	}
}
