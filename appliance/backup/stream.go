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

// StreamOptions describe continuous WAL streaming into a repository.
type StreamOptions struct {
	DB         string
	Repo       string
	Slot       string // the permanent physical slot of this destination
	Recipients []string
	Signer     *signer.Key // the box's signing key: everything stored is signed with it
	OnFlush    func(tli uint32, flushed postgres.LSN)
	Progress   func(flushed, serverEnd postgres.LSN)              // see postgres.StreamOptions
	OnGap      func(stored, restart postgres.LSN, recreated bool) // see postgres.StreamOptions
	Log        *slog.Logger
	// MaxBackoff caps the wait between reconnects. Zero means 30 s.
	MaxBackoff time.Duration
	// EndPos > 0 stops streaming once WAL up to it is stored.
	EndPos postgres.LSN
	// ZstdOnly compresses all WAL with zstd, even while catching up on a
	// backlog; false (the default) switches to S2 then, which drains
	// several times faster at a somewhat lower ratio.
	ZstdOnly bool
}

// Stream stores WAL through a permanent slot until ctx is cancelled, then
// flushes and returns nil. A lost connection (server restart, network) is
// retried with backoff; the slot keeps the WAL meanwhile, and streaming
// resumes where the repository ends, so nothing is lost. Problems the
// operator must fix (*postgres.Error) end it, and so does a drive that is
// full, read-only or fails with I/O errors.
func Stream(ctx context.Context, opt StreamOptions) error {
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.MaxBackoff <= 0 {
		opt.MaxBackoff = 30 * time.Second
	}
	var wal *archive.WALWriter
	defer func() {
		if wal != nil {
			wal.Close()
		}
	}()
	backoff := time.Second
	for ctx.Err() == nil {
		err := streamOnce(ctx, opt, &wal)
		if err == nil || ctx.Err() != nil {
			return nil // stopped at EndPos, or a clean stop on cancel
		}
		if permanent(err) {
			return err
		}
		opt.Log.Warn("WAL stream interrupted; reconnecting", "op", "wal", "slot", opt.Slot, "err", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
		backoff = min(backoff*2, opt.MaxBackoff)
	}
	return nil
}

// permanent reports whether a stream's error is for the operator to fix,
// so that retrying cannot help: the server's (unless it says to retry),
// another database's or an unsigned repository, a full, read-only or
// failing drive. ErrWALLocked is retried: a backup streaming its own WAL
// holds the lock only until it ends.
func permanent(err error) bool {
	if pe := (*postgres.Error)(nil); errors.As(err, &pe) && !pe.Retry {
		return true
	}
	for _, e := range []error{archive.ErrOtherSystem, archive.ErrNoSigner, archive.ErrDiskFull, archive.ErrReadOnly, archive.ErrDriveIO} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func streamOnce(ctx context.Context, opt StreamOptions, wal **archive.WALWriter) error {
	conn, err := postgres.Connect(ctx, opt.DB)
	if err != nil {
		return err
	}
	defer conn.Close()
	if *wal == nil {
		repo, err := OpenRepo(opt.Repo, conn.System, opt.Recipients, opt.Signer)
		if err != nil {
			return err
		}
		if *wal, err = repo.WAL(); err != nil {
			return err
		}
	}
	return conn.StreamWAL(ctx, walSink(*wal, opt.ZstdOnly), postgres.StreamOptions{Slot: opt.Slot, Log: opt.Log, OnFlush: opt.OnFlush, Progress: opt.Progress,
		OnGap: opt.OnGap, StopAt: opt.EndPos})
}

// walSink is what the stream writes into: the WAL writer, or with
// zstdOnly the writer behind only WALSink's methods, so that the stream
// cannot tell it to catch up with a faster codec.
func walSink(w *archive.WALWriter, zstdOnly bool) postgres.WALSink {
	if zstdOnly {
		return struct{ postgres.WALSink }{w}
	}
	return w
}
