package pgtest

import (
	"context"
	"fmt"
	"testing"
)

// A cluster of each supported major version starts with the same settings
// and runs the version asked for.
func TestClusterMajor(t *testing.T) {
	for _, major := range []int{15, 17} {
		t.Run(fmt.Sprint(major), func(t *testing.T) {
			c := New(t, Options{Major: major})
			ctx := context.Background()
			conn, err := c.Connect(ctx, "postgres")
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			var v int
			var level string
			if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int, current_setting('wal_level')").Scan(&v, &level); err != nil {
				t.Fatal(err)
			}
			if v/10000 != major || level != "replica" {
				t.Errorf("server_version_num %d, wal_level %s; want PostgreSQL %d with wal_level replica", v, level, major)
			}
			if _, err := conn.Exec(ctx, "CREATE EXTENSION amcheck"); err != nil {
				t.Errorf("amcheck: %v", err)
			}
		})
	}
}
