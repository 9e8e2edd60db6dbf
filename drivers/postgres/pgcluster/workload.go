package pgcluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/clinicbox/clinicbox/drivers/postgres"
	"github.com/jackc/pglogrepl"
)

// PgbenchInit creates pgbench's tables at the given scale (about 15 MB of
// data per unit).
func (c *Cluster) PgbenchInit(ctx context.Context, scale int) error {
	return c.run(ctx, "pgbench", "-i", "-q", "-s", strconv.Itoa(scale), "postgres")
}

// Pgbench runs a pgbench workload until ctx ends or the given args stop it
// (-T seconds, -t transactions). The returned error ignores cancellation.
func (c *Cluster) Pgbench(ctx context.Context, args ...string) error {
	cmd := c.Command(ctx, "pgbench", append(append([]string{"-n"}, args...), "postgres")...)
	out, err := cmd.CombinedOutput()
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("pgcluster: pgbench: %w\n%s", err, tail(string(out), 1000))
	}
	return nil
}

// StartStandby makes a streaming standby of c with pg_basebackup -R.
func (c *Cluster) StartStandby(ctx context.Context) (*Cluster, error) {
	top, err := os.MkdirTemp("", "clinicbox-pg-")
	if err != nil {
		return nil, err
	}
	s := &Cluster{Dir: top, DataDir: filepath.Join(top, "data"), SockDir: top, BinDir: c.BinDir, uid: -1, gid: -1}
	if err := s.setOwner(); err != nil {
		os.RemoveAll(top)
		return nil, err
	}
	if s.Port, err = freePort(); err != nil {
		return nil, err
	}
	fail := func(err error) (*Cluster, error) {
		log, _ := os.ReadFile(filepath.Join(top, "postgres.log"))
		s.Stop()
		return nil, fmt.Errorf("%w\n%s", err, tail(string(log), 2000))
	}
	if err := c.run(ctx, "pg_basebackup", "-D", s.DataDir, "-R", "-X", "stream", "-c", "fast",
		"-h", c.SockDir, "-p", strconv.Itoa(c.Port), "-U", "postgres"); err != nil {
		return fail(err)
	}
	conf := []string{fmt.Sprintf("port = %d", s.Port), fmt.Sprintf("unix_socket_directories = '%s'", s.SockDir), "hot_standby = on"}
	if err := appendFile(filepath.Join(s.DataDir, "postgresql.conf"), strings.Join(conf, "\n")+"\n"); err != nil {
		return fail(err)
	}
	if err := s.run(ctx, "pg_ctl", "-D", s.DataDir, "-l", filepath.Join(top, "postgres.log"), "-w", "-t", "60", "start"); err != nil {
		return fail(err)
	}
	return s, nil
}

// Promote ends recovery on a standby: it starts a new timeline.
func (c *Cluster) Promote(ctx context.Context) error {
	return c.run(ctx, "pg_ctl", "-D", c.DataDir, "-w", "promote")
}

// CurrentLSN is the server's current WAL write position; with switchWAL the
// current segment is completed first (pg_switch_wal).
func (c *Cluster) CurrentLSN(ctx context.Context, switchWAL bool) (postgres.LSN, error) {
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	if switchWAL {
		if _, err := conn.Exec(ctx, "SELECT pg_switch_wal()"); err != nil {
			return 0, err
		}
	}
	var s string
	if err := conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&s); err != nil {
		return 0, err
	}
	return pglogrepl.ParseLSN(s)
}
