package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/clinicbox/clinicbox/drivers/postgres/pgcluster"
)

// bench holds what every measurement shares: one cluster, one clinicctl
// binary, one key, and a scratch directory removed at the end.
type bench struct {
	cfg     config
	log     io.Writer // progress lines
	tmp     string    // scratch directory, readable by the server's user
	pgwork  string    // scratch directory the server's user owns
	ctl     string    // the clinicctl binary, built without -race
	pg      *pgcluster.Cluster
	srv     serverUser
	idFile  string // age identity, readable by the server's user for wal-fetch
	recip   string // its public recipient
	machine machine
	drive   *slowDrive // where backlogs drain a second time; nil without -drive-mbps

	dataBytes   int64             // pg_database_size after pgbench -i
	clinicBytes int64             // the clinic dataset's size once loaded; zero before
	walNotes    []string          // WAL generated for each measurement
	backupRepo  string            // a repository holding one base backup, for verify
	ctlRuns     map[string]series // every clinicctl run, by subcommand
	ctlOrder    []string          // subcommands in the order first run
}

func newBench(ctx context.Context, cfg config, log io.Writer) (*bench, error) {
	b := &bench{cfg: cfg, log: log, ctlRuns: map[string]series{}}
	var err error
	if b.srv, err = lookupServerUser(); err != nil {
		return nil, err
	}
	if b.tmp, err = os.MkdirTemp("", "clinicbench-"); err != nil {
		return nil, err
	}
	// The server's user must reach the repository, the key and clinicctl
	// (restore_command runs clinicctl wal-fetch as that user).
	if err := os.Chmod(b.tmp, 0o755); err != nil {
		return b, err
	}
	b.pgwork = filepath.Join(b.tmp, "pg")
	if err := b.srv.mkdir(b.pgwork, 0o755); err != nil {
		return b, err
	}
	b.logf("building clinicctl")
	b.ctl = filepath.Join(b.tmp, "clinicctl")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", b.ctl, "github.com/clinicbox/clinicbox/cmd/clinicctl").CombinedOutput(); err != nil {
		return b, fmt.Errorf("go build clinicctl: %w\n%s", err, out)
	}
	if err := b.keygen(ctx); err != nil {
		return b, err
	}
	if cfg.driveMBps > 0 {
		b.logf("making a drive that writes %d MB/s", cfg.driveMBps)
		if b.drive, err = openSlowDrive(ctx, b.tmp, max(4096, 3*max(cfg.walMB, cfg.clinicMB)), cfg.driveMBps); err != nil {
			return b, err
		}
	}
	b.logf("starting PostgreSQL (fsync on)")
	if b.pg, err = pgcluster.Start(ctx, pgcluster.Options{Fsync: true, Dir: b.tmp}); err != nil {
		return b, err
	}
	b.machine = describeMachine(ctx, b.tmp, b.pg)
	b.logf("pgbench -i -s %d", cfg.scale)
	start := time.Now()
	if err := b.pg.PgbenchInit(ctx, cfg.scale); err != nil {
		return b, err
	}
	// pgbench -i leaves the whole database dirty in memory: without this
	// checkpoint the first backup's fast checkpoint would write it all,
	// charging whichever tool goes first.
	if err := b.pg.Exec(ctx, "CHECKPOINT"); err != nil {
		return b, err
	}
	if err := b.scalar(ctx, "SELECT pg_database_size('postgres')", &b.dataBytes); err != nil {
		return b, err
	}
	b.logf("%.2f GB of pgbench data in %s", float64(b.dataBytes)/1e9, seconds(time.Since(start)))
	return b, nil
}

func (b *bench) keygen(ctx context.Context) error {
	b.idFile = filepath.Join(b.tmp, "identity.txt")
	out, err := exec.CommandContext(ctx, b.ctl, "keygen", "--out", b.idFile).Output()
	if err != nil {
		return fmt.Errorf("clinicctl keygen: %w", err)
	}
	b.recip = strings.TrimSpace(string(out))
	if i := strings.LastIndex(b.recip, "\n"); i >= 0 {
		b.recip = strings.TrimSpace(b.recip[i+1:])
	}
	if !strings.HasPrefix(b.recip, "age1") {
		return fmt.Errorf("clinicctl keygen printed %q, not an age recipient", b.recip)
	}
	if b.srv.ok {
		return os.Chown(b.idFile, b.srv.uid, b.srv.gid)
	}
	return nil
}

// close stops the cluster and removes everything.
func (b *bench) close() {
	if b.pg != nil {
		b.pg.Stop()
	}
	if b.drive != nil {
		if err := b.drive.Close(); err != nil {
			b.logf("removing the slow drive: %v", err)
		}
	}
	if b.tmp != "" {
		os.RemoveAll(b.tmp)
	}
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// clinicctl runs a clinicctl subcommand to completion and records its cost.
func (b *bench) clinicctl(ctx context.Context, args ...string) (measure, string, error) {
	m, out, err := runTimed(exec.CommandContext(ctx, b.ctl, args...))
	b.record(args[0], m)
	return m, out, err
}

// record keeps a clinicctl run for the memory table.
func (b *bench) record(sub string, m measure) {
	if _, ok := b.ctlRuns[sub]; !ok {
		b.ctlOrder = append(b.ctlOrder, sub)
	}
	b.ctlRuns[sub] = append(b.ctlRuns[sub], m)
}

// fresh returns a new path under the scratch directory, removing anything
// left there by an earlier run.
func (b *bench) fresh(name string) string {
	p := filepath.Join(b.tmp, name)
	os.RemoveAll(p)
	return p
}

// memory is the table of clinicctl's peak memory over every run.
func (b *bench) memory() *section {
	s := &section{title: "Peak memory of every clinicctl run", measure: "largest peak over the runs", ref: "reference",
		about: "The largest peak resident set (rusage maxrss) of each clinicctl subcommand over all runs above, whatever the database size."}
	for _, sub := range b.ctlOrder {
		runs := b.ctlRuns[sub]
		r := atMost(fmt.Sprintf("clinicctl %s, %d runs (MiB)", sub, len(runs)), "%.1f", runs.maxRSS(), nan, 64, "MiB")
		s.rows = append(s.rows, r)
	}
	return s
}

func (b *bench) workload() []string {
	w := []string{
		fmt.Sprintf("pgbench scale %d: database size %.2f GB (pg_database_size)", b.cfg.scale, float64(b.dataBytes)/1e9),
		fmt.Sprintf("runs per measurement: %d; tables show medians", b.cfg.runs),
	}
	return append(w, b.walNotes...)
}
