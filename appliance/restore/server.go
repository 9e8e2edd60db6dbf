package restore

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/clinicbox/clinicbox/drivers/postgres/pgbin"
	"github.com/jackc/pgx/v5"
)

// Server is a private PostgreSQL started on a restored data directory, on a
// free loopback port, as an unprivileged user when run as root.
type Server struct {
	PGData, SockDir string
	Port            int
	// LogDir holds the server's log; empty means SockDir.
	LogDir string
	Bin    pgbin.Bin // the programs it runs on
	cred   *syscall.Credential
}

// ServerConfig says how to start a private server on a restored data
// directory.
type ServerConfig struct {
	PGData, SockDir string
	// LogDir holds the server's log; empty means SockDir (a drill keeps
	// it in its scratch, and its socket in a short directory of its own).
	LogDir string
	// UID and GID, when >= 0, are the unprivileged user the server runs as
	// (see pgbin.ServerUser).
	UID, GID int
	// Port is the loopback port; 0 means a free one.
	Port int
	// Bin are the programs to run. The zero value means: found by Search
	// for the data directory's major version (PG_VERSION). Programs of
	// another major version than the data directory's are refused.
	Bin    pgbin.Bin
	Search pgbin.Search
}

// StartServer starts PostgreSQL on a restored data directory. Settings that
// would clash with the original server (port, sockets, archiving,
// replication) are overridden. It returns once the server accepts
// connections; recovery may still be running (see WaitRecovered). The
// programs are those of the data directory's major version, found in
// the default places (pgbin.Layouts).
func StartServer(ctx context.Context, pgdata, sockDir string, uid, gid int) (*Server, error) {
	return StartServerOn(ctx, pgdata, sockDir, uid, gid, 0)
}

// StartServerOn is StartServer on the given loopback port (0: a free one).
func StartServerOn(ctx context.Context, pgdata, sockDir string, uid, gid, port int) (*Server, error) {
	return StartServerWith(ctx, ServerConfig{PGData: pgdata, SockDir: sockDir, UID: uid, GID: gid, Port: port})
}

// StartServerWith is StartServer with every choice spelled out.
func StartServerWith(ctx context.Context, cfg ServerConfig) (*Server, error) {
	s, err := newServer(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// newServer describes the server of cfg, its programs found and its port
// chosen, without starting it: a caller that must stop it whatever
// happens (a drill cancelled while pg_ctl waits for the start) can defer
// Stop first.
func newServer(ctx context.Context, cfg ServerConfig) (*Server, error) {
	bin, err := serverBin(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{PGData: cfg.PGData, SockDir: cfg.SockDir, LogDir: cfg.LogDir, Bin: bin}
	if cfg.UID >= 0 {
		s.cred = &syscall.Credential{Uid: uint32(cfg.UID), Gid: uint32(cfg.GID)}
	}
	if s.Port = cfg.Port; s.Port == 0 {
		if s.Port, err = freePort(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// start configures the private server and starts it.
func (s *Server) start(ctx context.Context) error {
	conf := []string{"", "# Added by clinicctl drill: a private server on loopback",
		"listen_addresses = '127.0.0.1'", fmt.Sprintf("port = %d", s.Port),
		fmt.Sprintf("unix_socket_directories = '%s'", s.SockDir),
		// The original server's TLS files are not in the restore (a
		// server's certificate usually lives outside its data directory,
		// and a path to it may not exist here); a private server on
		// loopback and its own socket needs no TLS.
		"ssl = off",
		"archive_mode = off", "hot_standby = on",
		// The original server's locales for messages and formatting may
		// not exist where the drill runs (the box has only a few): an
		// unknown one would stop the server from starting. Databases keep
		// their own collation; one missing here is named by the drill's
		// checks.
		"lc_messages = 'C'", "lc_monetary = 'C'", "lc_numeric = 'C'", "lc_time = 'C'",
		"primary_conninfo = ''", "primary_slot_name = ''", "shared_preload_libraries = ''"}
	f, err := os.OpenFile(filepath.Join(s.PGData, "postgresql.auto.conf"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	_, err = f.WriteString(strings.Join(conf, "\n") + "\n")
	f.Close()
	if err != nil {
		return err
	}
	if err := s.pgctl(ctx, "-l", s.LogFile(), "-w", "-t", "3600", "start"); err != nil {
		return fmt.Errorf("restore: the restored server did not start: %w\n%s", err, s.LogTail(3000))
	}
	return nil
}

// LogFile is where the server logs.
func (s *Server) LogFile() string { return filepath.Join(cmp.Or(s.LogDir, s.SockDir), "postgres.log") }

// LogTail returns the end of the server's log.
func (s *Server) LogTail(n int) string {
	b, _ := os.ReadFile(s.LogFile())
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func (s *Server) pgctl(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, s.Bin.Path("pg_ctl"), append([]string{"-D", s.PGData}, args...)...)
	// LOCPATH, when the programs come with their own locales (the box's
	// trees), is where the server finds the databases' collations.
	cmd.Env = s.Bin.Env(append(os.Environ(), "LC_ALL=C"))
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %s: %w: %s", args[len(args)-1], err, out)
	}
	return nil
}

// Connect opens a superuser connection over the private socket.
func (s *Server) Connect(ctx context.Context, db string) (*pgx.Conn, error) {
	return pgx.Connect(ctx, fmt.Sprintf("host=%s port=%d user=postgres dbname=%s sslmode=disable", s.SockDir, s.Port, db))
}

// WaitRecovered waits until recovery has ended and the server is writable.
// A server that stops during recovery (a damaged or missing segment) is an
// error carrying its log.
func (s *Server) WaitRecovered(ctx context.Context) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		conn, err := s.Connect(ctx, "postgres")
		if err == nil {
			var inRecovery bool
			err = conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery)
			conn.Close(context.Background())
			if err == nil && !inRecovery {
				return nil
			}
		}
		if _, perr := os.Stat(filepath.Join(s.PGData, "postmaster.pid")); perr != nil {
			return fmt.Errorf("restore: the server stopped during recovery:\n%s", s.LogTail(3000))
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Stop stops the server.
func (s *Server) Stop() error {
	if _, err := os.Stat(filepath.Join(s.PGData, "postmaster.pid")); err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return s.pgctl(ctx, "-m", "fast", "-w", "stop")
}

// serverBin returns cfg.Bin, or finds the programs of the data
// directory's major version; either way it checks that they match it.
func serverBin(ctx context.Context, cfg ServerConfig) (pgbin.Bin, error) {
	major, err := DataMajor(cfg.PGData)
	if err != nil {
		return pgbin.Bin{}, err
	}
	if cfg.Bin.Dir == "" {
		return cfg.Search.Find(ctx, major)
	}
	if cfg.Bin.Major != major {
		return pgbin.Bin{}, fmt.Errorf("restore: %s is a PostgreSQL %d data directory; the programs in %s are PostgreSQL %d and cannot run it",
			cfg.PGData, major, cfg.Bin.Dir, cfg.Bin.Major)
	}
	return cfg.Bin, nil
}

// DataMajor reads the major version of a data directory (PG_VERSION).
func DataMajor(pgdata string) (int, error) {
	root, err := os.OpenRoot(pgdata)
	if err != nil {
		return 0, fmt.Errorf("restore: %w", err)
	}
	defer root.Close()
	return dataMajor(root)
}

func dataMajor(root *os.Root) (int, error) {
	v, err := readHead(root, "PG_VERSION", 8)
	if err != nil {
		return 0, err
	}
	major, err := strconv.Atoi(strings.TrimSpace(string(v)))
	if err != nil || major < 10 || major > 999 {
		return 0, fmt.Errorf("restore: the restored PG_VERSION holds %q, not a PostgreSQL major version", v)
	}
	return major, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
