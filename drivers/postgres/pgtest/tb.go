package pgtest

import (
	"context"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/drivers/testenv"
)

// New starts a cluster for a test and stops it when the test ends. It skips
// the test (or fails it under CLINICBOX_REQUIRE_ALL=1) when PostgreSQL is
// not installed.
func New(t testing.TB, opt Options) *Cluster {
	t.Helper()
	if _, err := opt.binDir(context.Background()); err != nil {
		testenv.Skip(t, err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := Start(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

// MustExec runs SQL as the superuser and fails the test on error.
func (c *Cluster) MustExec(t testing.TB, stmts ...string) {
	t.Helper()
	if err := c.Exec(context.Background(), stmts...); err != nil {
		t.Fatal(err)
	}
}
