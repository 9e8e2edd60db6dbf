// Package backup takes base backups and streams WAL from the clinic's
// PostgreSQL into a repository: the operations the command line, the
// appliance and the vault share.
package backup

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/signer"
	"github.com/clinicbox/clinicbox/drivers/postgres"
)

// Options describe a base backup.
type Options struct {
	DB          string      // PostgreSQL URL for a role with REPLICATION
	Repo        string      // repository directory
	Recipients  []string    // age public keys every file is encrypted to
	Signer      *signer.Key // the box's signing key: the backup is signed with it
	Compression archive.Compression
	Label       string
	// WALWait bounds how long to wait for another process streaming into
	// the repository to store the WAL the backup needs. Zero means 10 minutes.
	WALWait time.Duration
	// Streamed says that the caller streams WAL into the repository
	// through its permanent slot (the appliance does, for the drive in the
	// box), even if that stream has not taken the repository's WAL lock
	// yet. Take then never streams WAL itself but waits for that stream:
	// its own stream would start at the backup's start, and the permanent
	// one would resume after it, skipping the WAL between the repository's
	// end and the backup's start that the slot still kept.
	Streamed bool
	Progress func(done, total int64)
	Log      *slog.Logger
	Now      func() time.Time
}

// Take runs a base backup and makes sure the repository holds the WAL from
// its start to its end, so the backup restores on its own. When no other
// process streams WAL into the repository (and Options.Streamed is not
// set), Take streams it itself through a temporary slot, in parallel with
// the backup (like pg_basebackup -X stream); otherwise it waits for that
// process to store it.
func Take(ctx context.Context, opt Options) (*archive.Backup, error) {
	opt.defaults()
	var early *walConnect
	if !opt.Streamed {
		early = connectWALStream(ctx, opt)
	}
	conn, repo, err := connectRepo(ctx, opt)
	if err != nil {
		early.discard()
		return nil, err
	}
	defer conn.Close()
	ws, err := ownWALStream(ctx, opt, repo, early)
	if err != nil {
		return nil, err
	}
	if ws != nil {
		defer ws.wal.Close()
		defer ws.stop()
	}
	start := opt.Now().UTC()
	bw, err := repo.NewBackup(archive.NewID(start), opt.Compression)
	if err != nil {
		return nil, err
	}
	res, err := conn.BaseBackup(ctx, backupOptions(opt, ws), bw)
	if err == nil {
		err = awaitWAL(ctx, opt, repo, ws, res.EndLSN)
	}
	if err != nil {
		bw.Abort()
		return nil, err
	}
	if ws != nil {
		ws.end() // its last flush overlaps the commit's
	}
	done, err := bw.Commit(describe(opt, start, res))
	if err != nil {
		bw.Abort()
		return nil, err
	}
	opt.Log.Info("base backup stored", "op", "backup", "id", done.ID, "lsn", res.EndLSN, "bytes", res.Received, "dur", time.Since(res.Start).Round(time.Millisecond))
	return done, nil
}

// connectRepo connects for the backup and opens the repository.
func connectRepo(ctx context.Context, opt Options) (*postgres.Conn, *archive.Repo, error) {
	conn, err := postgres.Connect(ctx, opt.DB)
	if err != nil {
		return nil, nil, err
	}
	repo, err := OpenRepo(opt.Repo, conn.System, opt.Recipients, opt.Signer)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, repo, nil
}

// ownWALStream takes the repository's WAL and prepares the backup's own
// stream on early's connection, unless another process streams into the
// repository (then it returns nil and early is discarded).
func ownWALStream(ctx context.Context, opt Options, repo *archive.Repo, early *walConnect) (*walStream, error) {
	if early == nil {
		return nil, nil
	}
	wal, err := repo.WAL()
	if err != nil {
		early.discard()
		if errors.Is(err, archive.ErrWALLocked) {
			return nil, nil
		}
		return nil, err
	}
	ws, err := startWALStream(ctx, opt, early, wal)
	if err != nil {
		wal.Close()
		return nil, err
	}
	return ws, nil
}

// backupOptions asks the server for what opt wants: server-side zstd, and
// progress reports (which cost the server a pass over the data directory
// first) only when someone shows them.
func backupOptions(opt Options, ws *walStream) postgres.BackupOptions {
	bopt := postgres.BackupOptions{Label: opt.Label, Progress: opt.Progress}
	if opt.Compression == archive.ServerZstd {
		bopt.ServerZstdLevel = 1
	}
	if ws != nil {
		bopt.OnStart = ws.begin
	}
	return bopt
}

// describe is the backup's record from the server's answer.
func describe(opt Options, start time.Time, res postgres.BackupResult) archive.Backup {
	b := archive.Backup{Label: opt.Label, Timeline: res.Timeline, EndTimeline: res.EndTimeline,
		StartLSN: res.StartLSN, EndLSN: res.EndLSN, Start: start, End: opt.Now().UTC(), Compression: opt.Compression}
	for _, ts := range res.Tablespaces {
		if ts.OID != 0 {
			b.Tablespaces = append(b.Tablespaces, archive.Tablespace{OID: ts.OID, Location: ts.Location})
		}
	}
	return b
}

func (o *Options) defaults() {
	if o.Compression == "" {
		o.Compression = archive.ServerZstd
	}
	if o.WALWait <= 0 {
		o.WALWait = 10 * time.Minute
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// OpenRepo opens or creates the repository for a database system, signing
// what is written to it with k.
func OpenRepo(dir string, sys postgres.System, recipients []string, k *signer.Key) (*archive.Repo, error) {
	return archive.Create(dir, archive.Info{SystemID: sys.ID, SegmentSize: sys.SegmentSize,
		ServerVersion: sys.ServerVersion, Recipients: recipients}, k)
}
