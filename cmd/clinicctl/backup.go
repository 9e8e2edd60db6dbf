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
	var recips listFlag
	fs.Var(&recips, "recipient", "age public key to encrypt to (repeat for the paper recovery key)")
	if err := parse(fs, args, "db", "repo", "recipient"); err != nil {
		return err
	}
	c := archive.Compression(*compress)
	if c != archive.ServerZstd && c != archive.ClientZstd && c != archive.NoCompress {
		return fmt.Errorf("backup: --compress %q: use server-zstd, zstd or none", *compress)
	}
	prog, done := progress(stderr, "base backup")
	b, err := backup.Take(ctx, backup.Options{DB: *db, Repo: *repo, Recipients: recips, Compression: c,
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
	var recips listFlag
	fs.Var(&recips, "recipient", "age public key to encrypt to (repeat for the paper recovery key)")
	if err := parse(fs, args, "db", "repo", "slot", "recipient"); err != nil {
		return err
	}
	var end postgres.LSN
	if *endpos != "" {
		var err error
		if end, err = pglogrepl.ParseLSN(*endpos); err != nil {
			return fmt.Errorf("stream: --endpos %q is not an LSN like 0/16B3748", *endpos)
		}
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	return backup.Stream(ctx, backup.StreamOptions{DB: *db, Repo: *repo, Slot: *slot, Recipients: recips, Log: log, EndPos: end})
}
