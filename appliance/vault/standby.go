package vault

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/clinicbox/clinicbox/appliance/vault/wire"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgbin"

	"github.com/jackc/pglogrepl"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/restore"
	"github.com/clinicbox/clinicbox/appliance/signer"
)

// StandbyConfig sets up the trusted-standby mode: for a vault the practice
// owns and has given its recovery key, a hot-standby PostgreSQL that
// replays each box's WAL as it arrives. It is readable while the office
// server is down, and its replay is a continuous proof that the offsite
// copy restores. Without it the vault never holds a key.
type StandbyConfig struct {
	// Repo is the namespace's repository (Dir/boxes/NS/repo).
	Repo string
	// IdentityFile is the practice's recovery key (an age identity).
	IdentityFile string
	// BoxKey is the box's public signing key (clinicbox-sign1-...): the
	// standby replays only what the box signed.
	BoxKey string
	// Dir holds the standby's data directory, sockets and log.
	Dir string
	// Port is the loopback port the standby listens on; 0 picks a free one.
	Port int
	// FetchProgram is the clinicctl binary its restore_command runs.
	FetchProgram string
	// Poll is how often replay is checked; zero means 5 s.
	Poll time.Duration
}

// Standby runs one namespace's hot standby.
type Standby struct {
	cfg StandbyConfig
	log *slog.Logger

	mu sync.Mutex
	st wire.StandbyStatus
}

// NewStandby checks the configuration; Run does the work.
func NewStandby(cfg StandbyConfig, log *slog.Logger) (*Standby, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch {
	case cfg.Repo == "" || cfg.Dir == "":
		return nil, errors.New("vault: standby: set the namespace's repository and a directory for the standby")
	case cfg.IdentityFile == "":
		return nil, errors.New("vault: standby: needs the practice's recovery key (identity_file); without it the vault stays ciphertext-only")
	case cfg.FetchProgram == "":
		return nil, errors.New("vault: standby: needs the path of clinicctl, which restore_command runs")
	}
	if _, err := archive.LoadIdentities(cfg.IdentityFile); err != nil {
		return nil, fmt.Errorf("vault: standby: %w", err)
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 5 * time.Second
	}
	return &Standby{cfg: cfg, log: log, st: wire.StandbyStatus{State: "waiting for a base backup"}}, nil
}

// Status is a copy of the standby's state.
func (s *Standby) Status() wire.StandbyStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

func (s *Standby) set(f func(*wire.StandbyStatus)) {
	s.mu.Lock()
	f(&s.st)
	s.mu.Unlock()
}

// Run restores the newest base backup into the standby's data directory
// once the repository has one (unless the directory already holds the
// standby), starts PostgreSQL in standby mode and follows its replay until
// ctx ends, then stops it.
func (s *Standby) Run(ctx context.Context) error {
	err := s.run(ctx)
	if err != nil && ctx.Err() == nil {
		s.log.Error("standby failed", "op", "standby", "err", err)
		s.set(func(st *wire.StandbyStatus) { st.State, st.Error = "failed", err.Error() })
	}
	return err
}

func (s *Standby) run(ctx context.Context) error {
	tick := time.NewTicker(s.cfg.Poll)
	defer tick.Stop()
	uid, gid, err := pgbin.ServerUser()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.cfg.Dir, 0o700); err != nil {
		return err
	}
	if uid >= 0 {
		if err := os.Chown(s.cfg.Dir, uid, gid); err != nil {
			return err
		}
	}
	pgdata := filepath.Join(s.cfg.Dir, "pgdata")
	if _, err := os.Stat(filepath.Join(pgdata, "PG_VERSION")); err != nil {
		if err := s.restore(ctx, tick, pgdata, uid, gid); err != nil {
			return err
		}
	}
	srv, err := restore.StartServerOn(ctx, pgdata, s.cfg.Dir, uid, gid, s.cfg.Port)
	if err != nil {
		return err
	}
	defer srv.Stop()
	s.set(func(st *wire.StandbyStatus) { st.State, st.Port, st.Error = "replaying", srv.Port, "" })
	s.log.Info("standby replaying", "op", "standby", "port", srv.Port)
	for {
		if err := s.check(ctx, srv); err != nil && ctx.Err() == nil {
			s.set(func(st *wire.StandbyStatus) { st.Error = err.Error() })
			if _, perr := os.Stat(filepath.Join(pgdata, "postmaster.pid")); perr != nil {
				return fmt.Errorf("the standby server stopped: %w\n%s", err, srv.LogTail(2000))
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// restore waits for a base backup and restores it as a standby.
func (s *Standby) restore(ctx context.Context, tick *time.Ticker, pgdata string, uid, gid int) error {
	for {
		repo, err := archive.Open(s.cfg.Repo)
		if err == nil {
			if err := s.trust(repo); err != nil {
				return err
			}
			if done, _, err := repo.Backups(); err == nil && len(done) > 0 {
				return s.restoreFrom(ctx, repo, pgdata, uid, gid)
			}
		} else if !errors.Is(err, archive.ErrNotRepo) && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func (s *Standby) restoreFrom(ctx context.Context, repo *archive.Repo, pgdata string, uid, gid int) error {
	s.set(func(st *wire.StandbyStatus) { st.State = "restoring" })
	ids, err := archive.LoadIdentities(s.cfg.IdentityFile)
	if err != nil {
		return err
	}
	// The server's user reads the key through its own copy, kept in the
	// standby's directory (mode 0600, like the original).
	if err := os.Remove(filepath.Join(s.cfg.Dir, "identity")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	idFile, err := restore.PrivateIdentity(s.cfg.IdentityFile, s.cfg.Dir, uid, gid)
	if err != nil {
		return err
	}
	// A restore cut short leaves a partial data directory: start again.
	tmp := pgdata + ".restoring"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	res, err := restore.Run(ctx, restore.Options{Repo: repo, Identities: ids, IdentityFile: idFile,
		PGData: tmp, FetchProgram: s.cfg.FetchProgram, OwnerUID: uid, OwnerGID: gid, Standby: true})
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, pgdata); err != nil {
		return err
	}
	s.log.Info("standby restored", "op", "standby", "backup", res.Backup.ID)
	s.set(func(st *wire.StandbyStatus) { st.Backup = res.Backup.ID })
	return nil
}

// check reads how far the standby has replayed and where stored WAL ends.
func (s *Standby) check(ctx context.Context, srv *restore.Server) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := srv.Connect(cctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var lsn *string
	var at *time.Time
	if err := conn.QueryRow(cctx, "SELECT pg_last_wal_replay_lsn()::text, pg_last_xact_replay_timestamp()").Scan(&lsn, &at); err != nil {
		return err
	}
	var replayed archive.LSN
	if lsn != nil {
		if replayed, err = pglogrepl.ParseLSN(*lsn); err != nil {
			return err
		}
	}
	var stored archive.LSN
	if repo, err := archive.Open(s.cfg.Repo); err == nil {
		if ws, ok := repo.WALState(); ok {
			stored = ws.Flushed
		}
	}
	s.set(func(st *wire.StandbyStatus) {
		st.Replayed, st.Stored, st.Checked, st.Error = replayed, stored, time.Now().UTC(), ""
		st.Behind = max(0, int64(stored)-int64(replayed))
		if at != nil {
			st.LastCommit = at.UTC()
		}
	})
	return nil
}

// trust sets the key the standby checks a signed repository against.
func (s *Standby) trust(repo *archive.Repo) error {
	if !repo.Signed() {
		return nil
	}
	if s.cfg.BoxKey == "" {
		return errors.New("vault: standby: the box signs its backups; set standby.box_key to the box's signing key (clinicbox-sign1-..., on the box's page) so the standby replays only what the box wrote")
	}
	p, err := signer.ParsePublic(s.cfg.BoxKey)
	if err != nil {
		return fmt.Errorf("vault: standby: box_key: %w", err)
	}
	repo.Trust(p)
	return nil
}
