// Package backup takes base backups and streams WAL from the clinic's
// PostgreSQL into a repository, from the server step of the data path to the
// drive step: the operations the command line, the appliance and the vault
// share.
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
	conn, err := postgres.Connect(ctx, opt.DB)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	repo, err := OpenRepo(opt.Repo, conn.System, opt.Recipients, opt.Signer)
	if err != nil {
		return nil, err
	}
	ws, stop, err := streamOwnWAL(ctx, opt, repo)
	if err != nil {
		return nil, err
	}
	defer stop()
	start := opt.Now().UTC()
	bw, err := repo.NewBackup(archive.NewID(start), opt.Compression)
	if err != nil {
		return nil, err
	}
	bopt := postgres.BackupOptions{Label: opt.Label, Progress: opt.Progress}
	if opt.Compression == archive.ServerZstd {
		bopt.ServerZstdLevel = 1
	}
	if ws != nil {
		bopt.OnStart = ws.begin
	}
	res, err := conn.BaseBackup(ctx, bopt, bw)
	if err != nil {
		bw.Abort()
		return nil, err
	}
	if err := awaitWAL(ctx, opt, repo, ws, res.EndLSN); err != nil {
		bw.Abort()
		return nil, err
	}
	done, err := bw.Commit(record(opt, res, start))
	if err != nil {
		bw.Abort()
		return nil, err
	}
	opt.Log.Info("base backup stored", "op", "backup", "id", done.ID, "lsn", res.EndLSN, "bytes", res.Received, "dur", time.Since(res.Start).Round(time.Millisecond))
	return done, nil
}

// streamOwnWAL starts streaming the backup's WAL through a temporary slot
// unless another process streams WAL into repo (ws is then nil); stop ends
// the stream and closes the WAL writer.
func streamOwnWAL(ctx context.Context, opt Options, repo *archive.Repo) (ws *walStream, stop func(), err error) {
	stop = func() {}
	if opt.Streamed {
		return nil, stop, nil
	}
	wal, err := repo.WAL()
	if errors.Is(err, archive.ErrWALLocked) {
		return nil, stop, nil
	}
	if err != nil {
		return nil, stop, err
	}
	if ws, err = startWALStream(ctx, opt, wal); err != nil {
		wal.Close()
		return nil, stop, err
	}
	return ws, func() { ws.stop(); wal.Close() }, nil
}

// record is the repository's record of a finished base backup.
func record(opt Options, res postgres.BackupResult, start time.Time) archive.Backup {
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
