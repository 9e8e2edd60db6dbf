// Package pgcluster starts throwaway PostgreSQL clusters on loopback ports,
// stand-ins for the clinic's server (server step of the data path), for the
// demo, the benchmark harness and (through pgtest) the tests.
//
// initdb and postgres refuse to run as root, so when the caller is root the
// cluster runs as the unprivileged "postgres" user that Debian's package
// creates. Each cluster has wal_level=replica, data checksums,
// track_commit_timestamp=on, a replication role reachable over TCP with a
// password, and trust for the superuser on its private Unix socket; on
// request also TLS and other addresses. Impostor poses as a server, to
// test what a client gives away.
package pgcluster

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/clinicbox/clinicbox/drivers/postgres"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgbin"
)

// Roles created in every cluster. The passwords protect nothing but a
// loopback test server that lives for one test.
const (
	ReplUser     = "clinicbox"
	ReplPassword = "clinicbox-test-pw"
	PlainUser    = "frontdesk" // can log in, has no REPLICATION attribute
)

// Options tune a cluster. The zero value is a sensible test cluster.
type Options struct {
	// Conf holds extra postgresql.conf lines.
	Conf []string
	// Fsync keeps fsync on; off (the zero value) makes tests faster and
	// changes nothing the replication protocol sends.
	Fsync bool
	// Log receives postgres's log lines when set; otherwise they go to a file
	// in the cluster directory, shown on failures.
	Dir string // parent directory; empty means os.TempDir
	// TLS, when set, turns ssl on with this certificate and its key.
	TLS *Cert
	// Listen are addresses to listen on besides 127.0.0.1, each with
	// pg_hba.conf lines for password logins from it.
	Listen []string
	// Major is the PostgreSQL major version to run (see version.go); 0
	// means the newest installed under /usr/lib/postgresql.
	Major int
	// WALSegMiB is the WAL segment size initdb gives the cluster, in MiB
	// (a power of two up to 1024); 0 means initdb's default of 16.
	WALSegMiB int
}

// Cluster is a running PostgreSQL server.
type Cluster struct {
	Dir     string // top directory, removed by Stop
	DataDir string
	SockDir string
	Port    int
	BinDir  string

	cred *syscall.Credential // nil when not switching users
	uid  int
	gid  int
}

// BinDir finds PostgreSQL's programs (see postgres.BinDir).
func BinDir() (string, error) { return postgres.BinDir() }

// Start creates and starts a cluster.
func Start(ctx context.Context, opt Options) (*Cluster, error) {
	bin, err := opt.Bin(ctx)
	if err != nil {
		return nil, err
	}
	top, err := os.MkdirTemp(opt.Dir, "clinicbox-pg-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: top, DataDir: filepath.Join(top, "data"), SockDir: top, BinDir: bin, uid: -1, gid: -1}
	if err := c.setOwner(); err != nil {
		os.RemoveAll(top)
		return nil, err
	}
	if err := c.start(ctx, opt); err != nil {
		log, _ := os.ReadFile(filepath.Join(top, "postgres.log"))
		c.Stop()
		return nil, fmt.Errorf("%w\n%s", err, tail(string(log), 2000))
	}
	return c, nil
}

// setOwner arranges for the server to run as "postgres" when we are root.
func (c *Cluster) setOwner() error {
	if os.Geteuid() != 0 {
		return os.Chmod(c.Dir, 0o700)
	}
	var err error
	if c.uid, c.gid, err = pgbin.ServerUser(); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	c.cred = &syscall.Credential{Uid: uint32(c.uid), Gid: uint32(c.gid)}
	// The parents of a temp dir may be private to root: the server must
	// reach its own directory.
	if err := os.Chmod(c.Dir, 0o755); err != nil {
		return err
	}
	return os.Chown(c.Dir, c.uid, c.gid)
}

// Chown hands a path the test created to the server's user, so the server
// (for example, a tablespace directory) can use it.
func (c *Cluster) Chown(path string) error {
	if c.cred == nil {
		return nil
	}
	return os.Chown(path, c.uid, c.gid)
}

// Command returns a PostgreSQL program (initdb, pgbench, pg_basebackup...)
// set up to run as the cluster's user.
func (c *Cluster) Command(ctx context.Context, prog string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.BinDir, prog), args...)
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(), "PGHOST="+c.SockDir, "PGUSER=postgres", "PGDATABASE=postgres", "LC_ALL=C")
	if c.Port != 0 { // initdb runs before the port is chosen
		cmd.Env = append(cmd.Env, "PGPORT="+strconv.Itoa(c.Port))
	}
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd
}

func (c *Cluster) run(ctx context.Context, prog string, args ...string) error {
	out, err := c.Command(ctx, prog, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgcluster: %s %s: %w\n%s", prog, strings.Join(args, " "), err, tail(string(out), 2000))
	}
	return nil
}

func (c *Cluster) start(ctx context.Context, opt Options) error {
	args := []string{"-D", c.DataDir, "-U", "postgres", "--data-checksums",
		"--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C"}
	if opt.WALSegMiB != 0 {
		args = append(args, "--wal-segsize="+strconv.Itoa(opt.WALSegMiB))
	}
	if err := c.run(ctx, "initdb", args...); err != nil {
		return err
	}
	fsync := "off"
	if opt.Fsync {
		fsync = "on"
	}
	conf := []string{
		fmt.Sprintf("unix_socket_directories = '%s'", c.SockDir),
		"wal_level = replica", "max_wal_senders = 16", "max_replication_slots = 16",
		"track_commit_timestamp = on", "fsync = " + fsync, "full_page_writes = on",
		"shared_buffers = 128MB", "max_wal_size = 1GB", "checkpoint_timeout = 30min",
		"log_min_messages = warning", "log_connections = off",
	}
	hba := "host replication all 127.0.0.1/32 scram-sha-256\n"
	more, err := c.network(opt)
	if err != nil {
		return err
	}
	conf = append(append(conf, more...), opt.Conf...)
	for _, a := range opt.Listen {
		hba += fmt.Sprintf("host replication all %[1]s/%[2]d scram-sha-256\nhost all all %[1]s/%[2]d scram-sha-256\n", a, 8*len(ipBytes(a)))
	}
	if err := appendFile(filepath.Join(c.DataDir, "postgresql.conf"), strings.Join(conf, "\n")+"\n"); err != nil {
		return err
	}
	if err := appendFile(filepath.Join(c.DataDir, "pg_hba.conf"), hba); err != nil {
		return err
	}
	if err := c.startOnFreePort(ctx); err != nil {
		return err
	}
	return c.Exec(ctx,
		fmt.Sprintf("CREATE ROLE %s LOGIN REPLICATION PASSWORD '%s'", ReplUser, ReplPassword),
		fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", PlainUser, ReplPassword),
		fmt.Sprintf("GRANT pg_read_all_settings, pg_read_all_stats, pg_monitor TO %s", ReplUser),
	)
}

// Exec runs SQL statements as the superuser.
func (c *Cluster) Exec(ctx context.Context, stmts ...string) error {
	return c.ExecIn(ctx, "postgres", stmts...)
}

// ExecIn runs SQL statements as the superuser in database db.
func (c *Cluster) ExecIn(ctx context.Context, db string, stmts ...string) error {
	conn, err := c.Connect(ctx, db)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("pgcluster: %q: %w", s, err)
		}
	}
	return nil
}

// TB is the part of testing.TB that MustExec uses: declared here so that the
// demo and the benchmark, which link this package, do not link testing.
type TB interface {
	Helper()
	Fatal(args ...any)
}

// MustExec runs SQL as the superuser and fails the test on error.
func (c *Cluster) MustExec(t TB, stmts ...string) {
	t.Helper()
	if err := c.Exec(context.Background(), stmts...); err != nil {
		t.Fatal(err)
	}
}

// Connect opens an ordinary superuser connection to database db.
func (c *Cluster) Connect(ctx context.Context, db string) (*pgx.Conn, error) {
	return pgx.Connect(ctx, fmt.Sprintf("host=%s port=%d user=postgres dbname=%s sslmode=disable", c.SockDir, c.Port, db))
}

// URL is the replication role's URL over TCP, as an operator would write it.
func (c *Cluster) URL() string { return c.URLFor(ReplUser, ReplPassword) }

// URLAt is the replication role's URL for the server at host (127.0.0.1
// or one of Options.Listen) with the given query.
func (c *Cluster) URLAt(host, query string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(ReplUser, ReplPassword),
		Host: net.JoinHostPort(host, strconv.Itoa(c.Port)), Path: "/postgres", RawQuery: query}
	return u.String()
}

// URLFor builds a TCP URL for any role.
func (c *Cluster) URLFor(user, password string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, password),
		Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port)), Path: "/postgres", RawQuery: "sslmode=disable"}
	return u.String()
}

// Stop stops the server immediately and removes its files.
func (c *Cluster) Stop() {
	if _, err := os.Stat(filepath.Join(c.DataDir, "postmaster.pid")); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		c.run(ctx, "pg_ctl", "-D", c.DataDir, "-m", "immediate", "-w", "stop")
		cancel()
	}
	os.RemoveAll(c.Dir)
}

// Restart stops the server with the given mode (fast, immediate) and starts it again.
func (c *Cluster) Restart(ctx context.Context, mode string) error {
	if err := c.run(ctx, "pg_ctl", "-D", c.DataDir, "-m", mode, "-w", "stop"); err != nil {
		return err
	}
	return c.run(ctx, "pg_ctl", "-D", c.DataDir, "-l", filepath.Join(c.Dir, "postgres.log"), "-w", "-t", "60", "start")
}

func appendFile(name, text string) error {
	f, err := os.OpenFile(name, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// startOnFreePort starts the server on a port that was free a moment
// before. Another process may take it in between (another test run on the
// machine picks ports the same way, and any outgoing connection may get it
// as its local port): then the server cannot bind it, and another is tried.
func (c *Cluster) startOnFreePort(ctx context.Context) error {
	logFile := filepath.Join(c.Dir, "postgres.log")
	for try := 1; ; try++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		c.Port = port
		os.Remove(logFile) // this attempt's log only
		// The last port line of postgresql.conf is the one that counts.
		if err := appendFile(filepath.Join(c.DataDir, "postgresql.conf"), fmt.Sprintf("port = %d\n", port)); err != nil {
			return err
		}
		err = c.run(ctx, "pg_ctl", "-D", c.DataDir, "-l", logFile, "-w", "-t", "60", "start")
		if err == nil || try == 5 {
			return err
		}
		if log, _ := os.ReadFile(logFile); !strings.Contains(string(log), "Address already in use") {
			return err
		}
	}
}

// freePort is a loopback port nobody listens on now; a variable for the
// test that hands out a taken one.
var freePort = func() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
