package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/clinicbox/clinicbox/drivers/postgres"
	"github.com/jackc/pglogrepl"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/backup"
)

func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("backup", stderr)
	db := fs.String("db", "", "PostgreSQL URL of a role with REPLICATION")
	repo := fs.String("repo", "", "repository directory (created if empty)")
	compress := fs.String("compress", string(archive.ServerZstd), "server-zstd, zstd (on this machine) or none")
	label := fs.String("label", "clinicctl", "backup label")
	signKey := signKeyFlag(fs)
	var recips listFlag
	fs.Var(&recips, "recipient", "age public key to encrypt to (repeat for the paper recovery key)")
	if err := parse(fs, args, "db", "repo", "recipient"); err != nil {
		return err
	}
	k, err := loadSignKey(*signKey, stderr)
	if err != nil {
		return err
	}
	c := archive.Compression(*compress)
	if c != archive.ServerZstd && c != archive.ClientZstd && c != archive.NoCompress {
		return fmt.Errorf("backup: --compress %q: use server-zstd, zstd or none", *compress)
	}
	prog, done := progress(stderr, "base backup")
	b, err := backup.Take(ctx, backup.Options{DB: *db, Repo: *repo, Recipients: recips, Signer: k, Compression: c,
		Label: *label, Progress: prog, Log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	done()
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, b.ID)
	return nil
}

func runStream(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("stream", stderr)
	db := fs.String("db", "", "PostgreSQL URL of a role with REPLICATION")
	repo := fs.String("repo", "", "repository directory (created if empty)")
	slot := fs.String("slot", "", "physical replication slot (created if missing)")
	endpos := fs.String("endpos", "", "stop once WAL up to this LSN (X/Y) is stored, like pg_receivewal --endpos")
	compress := fs.String("compress", "adaptive", "adaptive (S2 while catching up on a backlog, zstd once caught up) or zstd (always: smaller on the drive, slower to catch up)")
	signKey := signKeyFlag(fs)
	var recips listFlag
	fs.Var(&recips, "recipient", "age public key to encrypt to (repeat for the paper recovery key)")
	if err := parse(fs, args, "db", "repo", "slot", "recipient"); err != nil {
		return err
	}
	k, err := loadSignKey(*signKey, stderr)
	if err != nil {
		return err
	}
	var end postgres.LSN
	if *endpos != "" {
		var err error
		if end, err = pglogrepl.ParseLSN(*endpos); err != nil {
			return fmt.Errorf("stream: --endpos %q is not an LSN like 0/16B3748", *endpos)
		}
	}
	if *compress != "adaptive" && *compress != "zstd" {
		return fmt.Errorf("stream: --compress %q: use adaptive or zstd", *compress)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	opt := backup.StreamOptions{DB: *db, Repo: *repo, Slot: *slot, Recipients: recips, Signer: k, Log: log, EndPos: end,
		ZstdOnly: *compress == "zstd"}
	if prog, done := progress(stderr, "catching up"); prog != nil {
		c := &catchUp{end: end}
		defer done()
		opt.Progress = func(flushed, serverEnd postgres.LSN) {
			if d, total, draw := c.at(flushed, serverEnd); draw {
				prog(d, total)
			}
			if c.finished {
				done() // clears the bar once; at never draws it again
			}
		}
	}
	return backup.Stream(ctx, opt)
}

// catchUp follows a stream that starts behind: toward --endpos, or toward
// the server's WAL end until it is reached. A stream that starts caught up
// gets no bar, and a bar ends once the stream has caught up: from then on
// the log says what happens.
type catchUp struct {
	end      postgres.LSN // --endpos; zero follows the server
	from     postgres.LSN // the first flush: the bar's zero
	started  bool
	finished bool
}

// catchUpMin is the least WAL behind that is worth a bar: one segment.
const catchUpMin = 16 << 20

// at says what the bar shows after a flush at flushed while the server's
// WAL ends at serverEnd: bytes done and in all since the first flush, and
// whether to draw it at all.
func (c *catchUp) at(flushed, serverEnd postgres.LSN) (done, total int64, draw bool) {
	if c.finished {
		return 0, 0, false
	}
	target := c.end
	if target == 0 {
		target = serverEnd
	}
	if !c.started {
		c.started, c.from = true, flushed
		if target < flushed+catchUpMin {
			c.finished = true
			return 0, 0, false
		}
	}
	if flushed >= target {
		c.finished = true
	}
	return int64(min(flushed, target) - c.from), int64(max(target, c.from) - c.from), true
}
