package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/clinicbox/clinicbox/drivers/postgres/pgbin"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgcluster"
)

// The clinic's database server for the smoke: a throwaway PostgreSQL
// (pgcluster) on the host's loopback with the clinic schema, reached by the
// guest through a forward. Its replication role is the one the box's
// settings name.
const (
	// guestDBAddr is where the guest finds the database (guestForward).
	guestDBAddr = "10.0.2.100:5432"
	// clinicPatients is how many patients the clinic starts with.
	clinicPatients = 200
)

// hostDB is the running server and its postmaster's process ID.
type hostDB struct {
	*pgcluster.Cluster
	pid int
	// cert is the server's own certificate, as a clinic's server has one:
	// the box reaches it across a network, where it requires TLS.
	cert *pgcluster.Cert
}

// startHostDB starts the server, with TLS on and WAL segments of walSegMiB
// (0: PostgreSQL's 16 MiB), and creates the clinic's tables.
func startHostDB(ctx context.Context, walSegMiB int) (*hostDB, error) {
	cert, err := pgcluster.NewCert(hostOf(guestDBAddr), "127.0.0.1", "localhost")
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	return startHostDBOf(ctx, pgcluster.Options{TLS: cert, WALSegMiB: walSegMiB})
}

// startHostDBOf starts a server as opt says (Major 0: the newest
// installed) and creates the clinic's tables.
func startHostDBOf(ctx context.Context, opt pgcluster.Options) (*hostDB, error) {
	cert := opt.TLS
	c, err := pgcluster.Start(ctx, opt)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	db := &hostDB{Cluster: c, cert: cert}
	if db.pid, err = pgbin.PostmasterPID(c.DataDir); err != nil {
		c.Stop()
		return nil, err
	}
	if err := c.ClinicInit(ctx, clinicPatients); err != nil {
		db.Stop()
		return nil, err
	}
	return db, nil
}

// Stop stops the server by its process ID and removes its files.
func (db *hostDB) Stop() error {
	err := stopPostmaster(db.pid)
	db.Cluster.Stop() // removes the files; the server is gone already
	return err
}

// stopPostmaster asks the server with process ID pid for a fast shutdown
// (SIGINT) and waits until the process is gone, killing it after 30
// seconds. The postmaster is not this program's child (pg_ctl started
// it), so its exit is seen in /proc, where an unreaped process shows as
// a zombie.
func stopPostmaster(pid int) error {
	if err := syscall.Kill(pid, syscall.SIGINT); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return fmt.Errorf("database: stop pid %d: %w", pid, err)
	}
	if waitGone(pid, 30*time.Second) {
		return nil
	}
	syscall.Kill(pid, syscall.SIGKILL)
	if !waitGone(pid, 10*time.Second) {
		return fmt.Errorf("database: pid %d still runs after SIGKILL", pid)
	}
	return fmt.Errorf("database: pid %d did not stop within 30 s of SIGINT; killed", pid)
}

// waitGone reports whether process pid exits within d.
func waitGone(pid int, d time.Duration) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if !running(pid) {
			return true
		}
	}
	return !running(pid)
}

// running reports whether process pid exists and has not exited.
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: the state follows the last ')'.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}
