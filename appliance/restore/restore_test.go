package restore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/signer"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
	"github.com/jackc/pgx/v5"
)

// visits records n clinic visits.
func visits(t *testing.T, c *pgtest.Cluster, n int, seed uint64) {
	t.Helper()
	ctx := context.Background()
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rng := rand.New(rand.NewPCG(seed, 7))
	for range n {
		if err := pgtest.ClinicVisit(ctx, conn, rng, 100); err != nil {
			t.Fatal(err)
		}
	}
}

// column lists one column of a query, in order.
func column[T any](t *testing.T, conn *pgx.Conn, sql string, args ...any) []T {
	t.Helper()
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[T])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func connect(t *testing.T, f func(context.Context, string) (*pgx.Conn, error)) *pgx.Conn {
	t.Helper()
	c, err := f(context.Background(), "postgres")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The deleted-encounter story and the other targets: a staff member deletes
// an encounter at a known moment while visits keep being recorded; a restore
// to just before it has every row committed up to then and none after.
func TestRestoreTargets(t *testing.T) {
	c := pgtest.New(t, pgtest.Options{})
	ctx := context.Background()
	if err := c.ClinicInit(ctx, 100); err != nil {
		t.Fatal(err)
	}
	visits(t, c, 50, 1)
	f := newFixture(t, c)
	wctx, stopWork := context.WithCancel(ctx)
	workErr := make(chan error, 1)
	go func() { workErr <- c.ClinicWorkload(wctx, 200, 100) }()
	visits(t, c, 100, 2)
	var victim int64
	var deletedAt time.Time
	queryRow(t, c, "SELECT min(id) FROM encounters", &victim)
	queryRow(t, c, "SELECT clock_timestamp()", &deletedAt)
	c.MustExec(t, fmt.Sprintf("DELETE FROM encounters WHERE id = %d", victim))
	visits(t, c, 100, 3)
	stopWork()
	if err := <-workErr; err != nil {
		t.Fatal(err)
	}
	c.MustExec(t, "CREATE TABLE markers (name text)", "INSERT INTO markers VALUES ('a')")
	afterA := lsnNow(t, c)
	c.MustExec(t, "SELECT pg_create_restore_point('after_a')", "INSERT INTO markers VALUES ('b')")
	wantBefore := column[int64](t, connect(t, c.Connect), "SELECT id FROM encounters WHERE pg_xact_commit_timestamp(xmin) <= $1 UNION SELECT $2 ORDER BY 1", deletedAt, victim)
	wantAll := column[int64](t, connect(t, c.Connect), "SELECT id FROM encounters ORDER BY 1")
	f.sync(t, 1)
	f.stop(t)
	if len(wantAll) < 200 || len(wantBefore) < 100 || len(wantAll) <= len(wantBefore) {
		t.Fatalf("workload too small: %d rows before the deletion, %d in all", len(wantBefore), len(wantAll))
	}
	for _, tc := range []struct {
		name     string
		target   Target
		wantIDs  []int64
		wantMark []string
	}{
		{"just before the deletion", Target{Time: deletedAt}, wantBefore, nil},
		{"latest", Target{}, wantAll, []string{"a", "b"}},
		{"LSN", Target{LSN: afterA}, wantAll, []string{"a"}},
		{"restore point", Target{Name: "after_a"}, wantAll, []string{"a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := f.restoreAndStart(t, f.dir, tc.target)
			if err != nil {
				t.Fatal(err)
			}
			if got := column[int64](t, connect(t, srv.Connect), "SELECT id FROM encounters ORDER BY 1"); !slices.Equal(got, tc.wantIDs) {
				t.Errorf("restored %d encounters (first %v); want %d", len(got), got[:min(3, len(got))], len(tc.wantIDs))
			}
			if tc.wantMark != nil {
				if got := column[string](t, connect(t, srv.Connect), "SELECT name FROM markers ORDER BY 1"); !slices.Equal(got, tc.wantMark) {
					t.Errorf("markers = %v; want %v", got, tc.wantMark)
				}
			}
		})
	}
	t.Run("outside the window", func(t *testing.T) {
		repo := f.repo(t)
		_, err := Run(ctx, Options{Repo: repo, Identities: f.ids, IdentityFile: f.idFile, PGData: filepath.Join(t.TempDir(), "x"),
			Target: Target{Time: deletedAt.Add(-24 * time.Hour)}, FetchProgram: clinicctl, OwnerUID: -1})
		if !errors.Is(err, ErrOutsideWindow) || !strings.Contains(err.Error(), "can restore to") {
			t.Errorf("got %v; want ErrOutsideWindow listing the window", err)
		}
	})
	t.Run("non-empty data directory", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "PG_VERSION"), []byte("15\n"), 0o600)
		_, err := Run(ctx, Options{Repo: f.repo(t), Identities: f.ids, IdentityFile: f.idFile, PGData: dir, FetchProgram: clinicctl, OwnerUID: -1})
		if err == nil || !strings.Contains(err.Error(), "not empty") {
			t.Errorf("got %v; want a refusal to overwrite", err)
		}
	})
}

// damagedRepo streams enough WAL for several segments after a backup and
// returns copies of the repository with a middle segment damaged or removed.
func damagedRepo(t *testing.T) (*fixture, map[string]string, string) {
	t.Helper()
	c := pgtest.New(t, pgtest.Options{})
	if err := c.ClinicInit(context.Background(), 100); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, c)
	c.MustExec(t, "CREATE TABLE filler AS SELECT generate_series(1, 2000000) AS x")
	visits(t, c, 50, 4)
	f.sync(t, 1)
	f.stop(t)
	segs, _ := filepath.Glob(filepath.Join(f.dir, "wal", "00000001", "*.zst.age"))
	slices.Sort(segs)
	if len(segs) < 4 {
		t.Fatalf("want at least 4 segments; have %d", len(segs))
	}
	victim := filepath.Base(segs[len(segs)-2])[:24]
	out := map[string]string{}
	for _, how := range []string{"flipped", "missing"} {
		dir := filepath.Join(sharedDir(t), "repo")
		if b, err := exec.Command("cp", "-a", f.dir, dir).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, b)
		}
		p := filepath.Join(dir, "wal", "00000001", victim+".zst.age")
		if how == "missing" {
			os.Remove(p)
		} else {
			data, _ := os.ReadFile(p)
			data[len(data)/2] ^= 1
			os.WriteFile(p, data, 0o644)
		}
		out[how] = dir
	}
	return f, out, victim
}

// A corrupt or missing segment makes the restore fail loudly: recovery
// aborts instead of ending early and promoting a database that lacks data.
func TestRestoreFailsLoudlyOnBadWAL(t *testing.T) {
	f, repos, victim := damagedRepo(t)
	for how, dir := range repos {
		t.Run(how, func(t *testing.T) {
			srv, err := f.restoreAndStart(t, dir, Target{})
			if err == nil {
				t.Fatal("restore of a repository with a bad segment succeeded")
			}
			if !strings.Contains(err.Error(), victim) {
				t.Errorf("error does not name segment %s: %v", victim, err)
			}
			if srv != nil {
				if _, err := os.Stat(filepath.Join(srv.PGData, "postmaster.pid")); err == nil {
					t.Errorf("a server is still running on the half-restored data directory")
				}
			}
		})
	}
}

// A drill passes on a good repository with a signed report saved in the
// repository, and fails with the reason when a WAL segment is damaged.
func TestDrill(t *testing.T) {
	f, repos, victim := damagedRepo(t)
	checks, err := ParseChecks(strings.NewReader("count public.encounters\nSELECT count(*) > 0 FROM patients;\n"))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Drill(context.Background(), DrillOptions{Repo: f.repo(t), Identities: f.ids, IdentityFile: f.idFile, Signer: testSigner,
		Checks: checks, FetchProgram: clinicctl, Save: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK {
		t.Fatalf("drill failed: %s %+v", rep.Failure, rep.Checks)
	}
	if rep.RTO <= 0 || rep.LastReplayed.IsZero() {
		t.Errorf("RTO %v, last replayed %v; want both measured", rep.RTO, rep.LastReplayed)
	}
	var counted bool
	for _, c := range rep.Checks {
		counted = counted || (c.Name == "postgres: rows in public.encounters" && c.Detail == "50")
	}
	if !counted {
		t.Errorf("checks %+v lack the encounter count of 50", rep.Checks)
	}
	saved, _ := filepath.Glob(filepath.Join(f.dir, "drills", "drill-*"))
	if len(saved) != 2 {
		t.Errorf("saved reports %v; want a JSON and an HTML file", saved)
	}
	if err := rep.VerifySignature(testSigner.Public()); err != nil {
		t.Errorf("report signature: %v", err)
	}
	forged := *rep
	forged.RTO = 1
	if forged.VerifySignature(testSigner.Public()) == nil {
		t.Errorf("an edited report still verifies")
	}
	// A report re-signed by another key that names itself is still refused:
	// the check uses the trusted key, never the one the report carries.
	other := signer.FromSeed(bytes.Repeat([]byte{9}, 32))
	forged.Sign(other)
	if err := forged.VerifySignature(testSigner.Public()); err == nil || forged.VerifySignature(signer.PublicKey{}) == nil {
		t.Errorf("a report signed by another key verifies against the box's key")
	}
	bad, err := archive.OpenFirstUse(repos["flipped"])
	if err != nil {
		t.Fatal(err)
	}
	rep, err = Drill(context.Background(), DrillOptions{Repo: bad, Identities: f.ids, IdentityFile: f.idFile, Signer: testSigner, FetchProgram: clinicctl})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || !strings.Contains(rep.Failure, victim) {
		t.Errorf("drill on a damaged repository: ok=%v failure=%q; want a failure naming %s", rep.OK, rep.Failure, victim)
	}
}

// A server promoted to a new timeline restores: streaming from a standby
// that is then promoted, the restore to latest follows the switch.
func TestRestoreAcrossPromotion(t *testing.T) {
	primary := pgtest.New(t, pgtest.Options{})
	ctx := context.Background()
	if err := primary.ClinicInit(ctx, 100); err != nil {
		t.Fatal(err)
	}
	standby, err := primary.StartStandby(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(standby.Stop)
	f := newFixture(t, standby)
	visits(t, primary, 40, 5)
	f.waitFor(t, 1, lsnNow(t, primary))
	want := column[int64](t, connect(t, primary.Connect), "SELECT id FROM encounters ORDER BY 1")
	if err := standby.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	standby.MustExec(t, "CREATE TABLE after_promotion AS SELECT 42 AS answer")
	f.sync(t, 2)
	f.stop(t)
	srv, err := f.restoreAndStart(t, f.dir, Target{})
	if err != nil {
		t.Fatal(err)
	}
	if got := column[int64](t, connect(t, srv.Connect), "SELECT id FROM encounters ORDER BY 1"); !slices.Equal(got, want) {
		t.Errorf("restored %d encounters; want %d", len(got), len(want))
	}
	if got := column[int32](t, connect(t, srv.Connect), "SELECT answer FROM after_promotion"); !slices.Equal(got, []int32{42}) {
		t.Errorf("after_promotion = %v; want [42] (written on the new timeline)", got)
	}
}
