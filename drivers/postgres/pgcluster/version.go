package pgcluster

import (
	"context"

	"github.com/clinicbox/clinicbox/drivers/postgres/pgbin"
)

// PostgreSQL 17 for tests comes from Debian 13 (trixie): .ci/pg17 builds
// it once per machine into pgbin.TestTree(), with its programs patched to
// load trixie's C library from that tree. Such a cluster then runs like a
// PostgreSQL 15 one: as the host's postgres user, on host paths, on
// 127.0.0.1.

// Bin finds the programs of opt.Major, or the default ones.
func (opt Options) Bin(ctx context.Context) (string, error) {
	if opt.Major == 0 {
		return BinDir()
	}
	b, err := pgbin.Search{Hint: "run .ci/setup (it builds PostgreSQL 17 into " + pgbin.TestTree() + ")"}.Find(ctx, opt.Major)
	return b.Dir, err
}
