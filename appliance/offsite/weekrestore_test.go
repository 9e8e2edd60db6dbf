package offsite_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/jackc/pgx/v5"

	"github.com/clinicbox/clinicbox/appliance/offsite/offsitebench"
	"github.com/clinicbox/clinicbox/appliance/restore"
	"github.com/clinicbox/clinicbox/drivers/testenv"
)

// The week ends with a restore from the vault (week_test.go): the box's
// repository mirrored from the vault, verified and recovered to a time of
// the last day, as `clinicctl restore --vault` does, and compared row for
// row with the source as it was at that time.

// weekTarget is the restore's target and the source's digest then.
type weekTarget struct {
	at     time.Time
	digest string
	rows   int64
}

// markTarget digests the source and then reads the server's clock: no
// commit falls between the two, so a restore to that time must give the
// same digest.
func markTarget(t *testing.T, conn *pgx.Conn) weekTarget {
	t.Helper()
	ctx := context.Background()
	digest, rows, err := weekDigest(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	var at time.Time
	if err := conn.QueryRow(ctx, "SELECT clock_timestamp()").Scan(&at); err != nil {
		t.Fatal(err)
	}
	return weekTarget{at: at, digest: digest, rows: rows}
}

// weekDigestTables are the tables weekDigest reads: the clinic's and the
// probes.
const weekDigestTables = `SELECT format('%I.%I', schemaname, tablename) FROM pg_tables
	WHERE schemaname IN ('clinic', 'public') ORDER BY 1`

// weekDigestRows digests one table in constant memory: its row count and
// the sum of the first 64 bits of each row's md5. (clinicHash's
// string_agg would pass PostgreSQL's 1 GB limit on a text value at a few
// hundred MB of clinic data.)
const weekDigestRows = `SELECT count(*), coalesce(sum(('x' || left(md5(r::text), 16))::bit(64)::bigint::numeric), 0)::text FROM %s r`

// weekDigest digests every row of the tables weekDigestTables names, and
// counts them.
func weekDigest(ctx context.Context, conn *pgx.Conn) (string, int64, error) {
	rows, err := conn.Query(ctx, weekDigestTables)
	if err != nil {
		return "", 0, err
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", 0, err
	}
	h := sha256.New()
	var total int64
	for _, tb := range tables {
		var n int64
		var sum string
		if err := conn.QueryRow(ctx, fmt.Sprintf(weekDigestRows, tb)).Scan(&n, &sum); err != nil {
			return "", 0, fmt.Errorf("digest of %s: %w", tb, err)
		}
		fmt.Fprintf(h, "%s %d %s\n", tb, n, sum)
		total += n
	}
	return hex.EncodeToString(h.Sum(nil)), total, nil
}

// restoreWeek restores the box's repository from the vault (read over hc,
// a restore machine's tailnet client) to target and compares it with the
// source.
func restoreWeek(t *testing.T, hc *http.Client, vaultDir, idText string, target weekTarget) offsitebench.WeekRestore {
	t.Helper()
	ctx := context.Background()
	repos, _ := filepath.Glob(filepath.Join(vaultDir, "boxes", "*", "repo"))
	if len(repos) != 1 {
		t.Fatalf("vault repositories: %v", repos)
	}
	id, err := age.ParseX25519Identity(idText)
	if err != nil {
		t.Fatal(err)
	}
	idFile := filepath.Join(testenv.SharedDir(t), "key")
	if err := os.WriteFile(idFile, []byte(idText+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	uid, gid := serverUser(t)
	if uid >= 0 {
		os.Chown(idFile, uid, gid)
	}
	res := offsitebench.WeekRestore{Target: target.at.Format(time.RFC3339Nano), SourceDigest: target.digest, VaultBytes: testenv.DirBytes(repos[0])}
	t0 := time.Now()
	r := restoreFromVault{t: t, hc: hc, ns: filepath.Base(filepath.Dir(repos[0])), ids: []age.Identity{id}, idFile: idFile, uid: uid, gid: gid}
	srv := r.start(ctx, restore.Target{Time: target.at})
	res.Seconds = time.Since(t0).Seconds()
	defer srv.Stop()
	conn, err := srv.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if res.RestoredDigest, res.Rows, err = weekDigest(ctx, conn); err != nil {
		t.Fatal(err)
	}
	res.Match = res.RestoredDigest == target.digest && res.Rows == target.rows
	return res
}
