package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/restore"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgbin"
	"github.com/jackc/pglogrepl"
)

func runRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("restore", stderr)
	repoDir := fs.String("repo", "", "repository directory")
	idFile := fs.String("identity", "", "age identity file")
	pgdata := fs.String("pgdata", "", "empty directory to restore the data directory into")
	toTime := fs.String("to-time", "", "keep every transaction committed at or before this time (RFC 3339, e.g. 2026-11-22T09:15:00-05:00)")
	toLSN := fs.String("to-lsn", "", "replay WAL up to this position (X/Y)")
	toName := fs.String("to-name", "", "replay up to this restore point (pg_create_restore_point)")
	latest := fs.Bool("latest", false, "replay all WAL in the repository (the default)")
	owner := fs.String("owner", "", "when run as root: user that will run PostgreSQL (files are given to it)")
	var ts listFlag
	fs.Var(&ts, "tablespace", "OLD=DIR: restore the tablespace whose original location is OLD (in the backup or created by the WAL) into DIR, an empty directory (repeatable); unmapped tablespaces of the backup go inside --pgdata")
	vf := addVaultFlags(fs)
	boxKey := boxKeyFlag(fs)
	pgBin := pgBinFlag(fs)
	if err := parse(fs, args, "identity", "pgdata"); err != nil {
		return err
	}
	if (*repoDir == "") == (*vf.host == "") {
		fmt.Fprintln(stderr, "clinicctl restore: give --repo DIR (a drive) or --vault HOST (the offsite vault)")
		return usageError{}
	}
	t, err := parseTarget(*toTime, *toLSN, *toName, *latest)
	if err != nil {
		return err
	}
	if *vf.host != "" {
		if *repoDir, err = vf.mirror(ctx, *pgdata, &t, stderr); err != nil {
			return err
		}
	}
	opt, err := restoreOptions(*repoDir, *idFile, *boxKey, *pgdata, *owner, ts, stderr)
	if err != nil {
		return err
	}
	opt.Target = t
	// A --pg-bin of another version is refused before anything is
	// written; without one, a missing version only changes the advice.
	bin, binErr := restore.FindServer(ctx, opt.Repo, pgbin.Search{Dir: *pgBin})
	if binErr != nil && *pgBin != "" {
		return binErr
	}
	prog, done := progress(stderr, "restore")
	opt.Progress = prog
	res, err := restore.Run(ctx, opt)
	done()
	if err != nil {
		return err
	}
	if _, note, _ := opt.Repo.BackupStatement(res.Backup); note != "" {
		fmt.Fprintln(stderr, "UNSIGNED:", note)
	}
	fmt.Fprintf(stdout, "restored backup %s (%.1f GB) into %s, recovering to %s\n", res.Backup.ID, float64(res.Needed)/1e9, opt.PGData, t)
	for _, p := range res.Tablespaces {
		fmt.Fprintf(stdout, "tablespace %d (at %s on the original server) is restored into %s", p.OID, p.Original, p.Dir)
		if !p.Mapped {
			fmt.Fprintf(stdout, "; --tablespace %s=DIR puts it elsewhere", p.Original)
		}
		fmt.Fprintln(stdout)
	}
	if binErr != nil {
		fmt.Fprintf(stdout, "start it with the pg_ctl of the PostgreSQL it came from: pg_ctl -D %s start\n(%s)\n",
			opt.PGData, strings.TrimPrefix(binErr.Error(), "restore: pgbin: "))
		return nil
	}
	fmt.Fprintf(stdout, "start it with PostgreSQL %s: %s -D %s start\n", bin.Version, bin.Path("pg_ctl"), opt.PGData)
	return nil
}

// pgBinFlag is where the operator points at PostgreSQL's programs.
func pgBinFlag(fs *flag.FlagSet) *string {
	return fs.String("pg-bin", "", "directory of the PostgreSQL programs (postgres, pg_ctl) of the backup's major version; default: found in the usual places (/usr/lib/postgresql/N/bin, ...)")
}

func parseTarget(toTime, toLSN, toName string, latest bool) (restore.Target, error) {
	var t restore.Target
	n := 0
	for _, s := range []string{toTime, toLSN, toName} {
		if s != "" {
			n++
		}
	}
	if latest && n > 0 || n > 1 {
		return t, errors.New("restore: give one of --to-time, --to-lsn, --to-name or --latest")
	}
	var err error
	switch {
	case toTime != "":
		if t.Time, err = time.Parse(time.RFC3339Nano, toTime); err != nil {
			return t, fmt.Errorf("restore: --to-time %q: use RFC 3339, like 2026-11-22T09:15:00-05:00", toTime)
		}
	case toLSN != "":
		if t.LSN, err = pglogrepl.ParseLSN(toLSN); err != nil {
			return t, fmt.Errorf("restore: --to-lsn %q: use the form 0/16B3748", toLSN)
		}
	}
	t.Name = toName
	return t, nil
}

func restoreOptions(repoDir, idFile, boxKey, pgdata, owner string, ts []string, stderr io.Writer) (restore.Options, error) {
	opt := restore.Options{OwnerUID: -1, OwnerGID: -1, Tablespaces: map[string]string{}}
	ids, err := archive.LoadIdentities(idFile)
	if err != nil {
		return opt, err
	}
	repo, err := openTrusted(repoDir, boxKey, stderr)
	if err != nil {
		return opt, err
	}
	if opt.IdentityFile, err = filepath.Abs(idFile); err != nil {
		return opt, err
	}
	if opt.PGData, err = filepath.Abs(pgdata); err != nil {
		return opt, err
	}
	abs, _ := filepath.Abs(repoDir)
	repo.Dir = abs
	opt.Repo, opt.Identities = repo, ids
	for _, m := range ts {
		old, nu, ok := strings.Cut(m, "=")
		if !ok || !filepath.IsAbs(old) || !filepath.IsAbs(nu) {
			return opt, fmt.Errorf("restore: --tablespace %q: use OLD=DIR with absolute paths", m)
		}
		opt.Tablespaces[filepath.Clean(old)] = filepath.Clean(nu)
	}
	if owner != "" {
		var err error
		if opt.OwnerUID, opt.OwnerGID, err = pgbin.UserIDs(owner); err != nil {
			return opt, fmt.Errorf("restore: --owner: %w", err)
		}
	}
	return opt, nil
}

func init() {
	commands["restore"] = command{runRestore, "restore (--repo DIR | --vault HOST) --identity FILE --pgdata DIR [--to-time T | --to-lsn X/Y | --to-name N | --latest] [--pg-bin DIR]"}
}
