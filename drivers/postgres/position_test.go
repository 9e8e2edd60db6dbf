package postgres_test

import (
	"context"
	"testing"

	"github.com/clinicbox/clinicbox/drivers/postgres"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
)

// TestPositionReader reads the primary's WAL position as it moves, and
// again after the server restarted under the reader's connection.
func TestPositionReader(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{})
	ctx := context.Background()
	r := &postgres.PositionReader{URL: c.URL()}
	defer r.Close()
	first, err := r.Read(ctx)
	if err != nil || first == 0 {
		t.Fatalf("first read: got %s, %v; want a position", first, err)
	}
	switched, err := c.CurrentLSN(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := r.Read(ctx); err != nil || got < switched || got <= first {
		t.Errorf("after pg_switch_wal: got %s, %v; want at least %s and past %s", got, err, switched, first)
	}
	if err := c.Restart(ctx, "fast"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(ctx); err == nil {
		t.Log("the old connection survived the restart")
	}
	if got, err := r.Read(ctx); err != nil || got < switched {
		t.Errorf("after a restart: got %s, %v; want at least %s", got, err, switched)
	}
}
