package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/signer"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgbin"
	"github.com/jackc/pgx/v5/pgconn"
)

// DrillOptions describe a restore drill.
type DrillOptions struct {
	Repo         *archive.Repo
	Identities   []age.Identity
	IdentityFile string
	// Signer signs the report: the box's key when the box drills, the
	// machine's own when clinicctl does.
	Signer       *signer.Key
	Target       Target
	Checks       *Checks
	FetchProgram string
	// Search finds the PostgreSQL programs of the repository's major
	// version (its server_version); the zero value searches the usual
	// install layouts. Another major version is never run.
	Search pgbin.Search
	// Save writes the report into the repository's drills/ directory.
	Save bool
	// ScratchParent is where the scratch directory is made; empty means
	// the system's temporary directory.
	ScratchParent string
	// ScratchInRAM says that ScratchParent is in memory only (the report
	// says so).
	ScratchInRAM bool
	Now          func() time.Time
}

// Drill restores into a scratch directory, starts a private PostgreSQL,
// waits for recovery to end, runs integrity checks and the practice's own
// checks, measures RTO and RPO, removes everything, and returns a signed
// report. The report's OK is false on any failure, with the reason.
//
// When the PostgreSQL version the repository needs is not installed,
// Drill touches nothing: it returns the signed, unsaved report of the
// failure and an error matching pgbin.ErrMissing that names the version.
func Drill(ctx context.Context, opt DrillOptions) (*Report, error) {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	start := opt.Now()
	rep := &Report{Started: start.UTC(), Target: opt.Target.String(), Repository: opt.Repo.Dir, SystemID: opt.Repo.Info.SystemID}
	rep.Host, _ = os.Hostname()
	bin, err := FindServer(ctx, opt.Repo, opt.Search)
	if err != nil {
		rep.Failure, rep.Finished = err.Error(), opt.Now().UTC()
		if serr := rep.Sign(opt.Signer); serr != nil {
			return rep, serr
		}
		return rep, err
	}
	rep.Server = bin.Version
	if opt.ScratchInRAM {
		rep.Scratch = "memory"
	}
	resetOwnPeak()
	err = drill(ctx, opt, bin, rep, start)
	rep.ProgramPeakRSS = ownPeak()
	if err != nil {
		rep.Failure = err.Error()
	}
	rep.OK = err == nil && rep.checksOK()
	if !rep.OK && rep.Failure == "" {
		rep.Failure = ChecksFailed
	}
	rep.Finished = opt.Now().UTC()
	if err := rep.Sign(opt.Signer); err != nil {
		return rep, err
	}
	if opt.Save {
		if err := rep.Save(opt.Repo); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// ChecksFailed is a report's Failure when the restore worked and a check
// failed; the checks say which.
const ChecksFailed = "a check failed"

// FindServer finds the PostgreSQL programs of the repository's major
// version (the server_version its backups were taken from).
func FindServer(ctx context.Context, repo *archive.Repo, s pgbin.Search) (pgbin.Bin, error) {
	v := repo.Info.ServerVersion
	if v == 0 {
		return pgbin.Bin{}, fmt.Errorf("restore: %s does not record which PostgreSQL its backups are from; it cannot be drilled safely", repo.Dir)
	}
	b, err := s.Find(ctx, pgbin.Major(v))
	if err != nil {
		return b, fmt.Errorf("restore: %w", err)
	}
	return b, nil
}

func drill(ctx context.Context, opt DrillOptions, bin pgbin.Bin, rep *Report, start time.Time) error {
	uid, gid, err := pgbin.ServerUser()
	if err != nil {
		return err
	}
	scratch, err := os.MkdirTemp(opt.ScratchParent, "clinicbox-drill-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	if err := os.Chmod(scratch, 0o755); err != nil {
		return err
	}
	idFile, err := PrivateIdentity(opt.IdentityFile, scratch, uid, gid)
	if err != nil {
		return err
	}
	pgdata, tsDir := filepath.Join(scratch, "pgdata"), filepath.Join(scratch, "tablespaces")
	if err := os.Mkdir(tsDir, 0o700); err != nil {
		return err
	}
	if uid >= 0 {
		if err := os.Chown(tsDir, uid, gid); err != nil {
			return err
		}
	}
	// Every tablespace, in the backup or created by the WAL, is restored
	// inside the scratch directory: never where the original server keeps
	// it (in use there, or left behind unencrypted after the drill).
	res, err := Run(ctx, Options{Repo: opt.Repo, Identities: opt.Identities, IdentityFile: idFile, PGData: pgdata,
		TablespaceDir: tsDir, Target: opt.Target, FetchProgram: opt.FetchProgram, OwnerUID: uid, OwnerGID: gid})
	if err != nil {
		return err
	}
	rep.Backup, rep.BackupTime = res.Backup.ID, res.Backup.End
	if uid >= 0 {
		if err := os.Chown(scratch, uid, gid); err != nil {
			return err
		}
	}
	sockDir, err := socketDir(uid, gid)
	if err != nil {
		return err
	}
	defer os.RemoveAll(sockDir)
	srv, err := newServer(ctx, ServerConfig{PGData: pgdata, SockDir: sockDir, LogDir: scratch, UID: uid, GID: gid, Bin: bin})
	if err != nil {
		return err
	}
	// A drill stopped while pg_ctl waits for the server to start leaves the
	// server running: stop it before the scratch directory goes.
	defer srv.Stop()
	peak := samplePeak(pgdata)
	defer func() { rep.ServerPeakRSS = peak.finish() }()
	if err := srv.start(ctx); err != nil {
		return err
	}
	if err := srv.WaitRecovered(ctx); err != nil {
		return err
	}
	rep.RTO = opt.Now().Sub(start).Seconds()
	rep.measureRPO(ctx, srv, opt.Target, res.Window)
	rep.runChecks(ctx, srv, opt.Checks)
	return nil
}

// socketDir makes the private server's socket directory. It is not the
// scratch directory, whose path can be longer than a Unix socket's path
// may be (107 bytes); it holds nothing but the socket and its lock file.
func socketDir(uid, gid int) (string, error) {
	dir, err := os.MkdirTemp("", "clinicbox-sock-")
	if err != nil {
		return "", fmt.Errorf("restore: socket directory: %w", err)
	}
	if uid >= 0 {
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return "", fmt.Errorf("restore: socket directory: %w", err)
		}
	}
	return dir, nil
}

// PrivateIdentity copies the identity into the scratch directory for the
// server's user (restore_command runs as that user); it goes away with the
// scratch directory.
func PrivateIdentity(path, scratch string, uid, gid int) (string, error) {
	if uid < 0 {
		return filepath.Abs(path)
	}
	src, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer src.Close()
	dst := filepath.Join(scratch, "identity")
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return dst, os.Chown(dst, uid, gid)
}

// measureRPO compares the target (or, for latest, when the newest WAL was
// stored) with the last commit recovery replayed.
func (rep *Report) measureRPO(ctx context.Context, srv *Server, t Target, w archive.Window) {
	conn, err := srv.Connect(ctx, "postgres")
	if err != nil {
		return
	}
	defer conn.Close(context.Background())
	var last *time.Time
	if conn.QueryRow(ctx, "SELECT pg_last_xact_replay_timestamp()").Scan(&last) != nil || last == nil {
		return
	}
	rep.LastReplayed = last.UTC()
	want := w.ToTime
	if !t.Time.IsZero() {
		want = t.Time
	}
	rep.RPO = max(0, want.Sub(*last).Seconds())
}

// runChecks runs the integrity checks in every database, then the
// practice's checks.
func (rep *Report) runChecks(ctx context.Context, srv *Server, checks *Checks) {
	conn, err := srv.Connect(ctx, "postgres")
	if err != nil {
		rep.Checks = append(rep.Checks, CheckResult{Name: "connect", Detail: err.Error()})
		return
	}
	rows, err := conn.Query(ctx, "SELECT datname FROM pg_database WHERE datallowconn ORDER BY datname")
	var dbs []string
	for err == nil && rows.Next() {
		var d string
		rows.Scan(&d)
		dbs = append(dbs, d)
	}
	conn.Close(context.Background())
	for _, db := range dbs {
		rep.checkDatabase(ctx, srv, db, checks)
	}
}

func (rep *Report) checkDatabase(ctx context.Context, srv *Server, db string, checks *Checks) {
	conn, err := srv.Connect(ctx, db)
	if err != nil {
		rep.Checks = append(rep.Checks, CheckResult{Name: "connect to " + db, Detail: connectDetail(err)})
		return
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS amcheck"); err != nil {
		rep.Checks = append(rep.Checks, CheckResult{Name: db + ": amcheck", Detail: err.Error()})
		return
	}
	for _, c := range integrityChecks {
		r := runStep(ctx, conn, CheckStep{SQL: c.sql})
		r.Name = db + ": " + c.name
		rep.Checks = append(rep.Checks, r)
	}
	if checks == nil {
		return
	}
	for _, st := range checks.Steps {
		if st.Database == db {
			r := runStep(ctx, conn, st)
			r.Name = db + ": " + r.Name
			rep.Checks = append(rep.Checks, r)
		}
	}
}

// connectDetail is a failed connection's error with the server's detail
// and hint, which name what is missing, such as a database's collation
// locale that this machine does not have.
func connectDetail(err error) string {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err.Error()
	}
	return strings.Join(slices.DeleteFunc([]string{err.Error(), pgErr.Detail, pgErr.Hint}, func(s string) bool { return s == "" }), " ")
}

func (rep *Report) checksOK() bool {
	for _, c := range rep.Checks {
		if !c.OK {
			return false
		}
	}
	return len(rep.Checks) > 0
}
