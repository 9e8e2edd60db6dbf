package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/restore"
	"github.com/jackc/pglogrepl"
)

// walFetchExit tells PostgreSQL how a fetch ended: 1 is "not in the
// archive" (recovery ends there); above 125 makes recovery abort, which is
// what a damaged or missing-in-the-middle segment must do.
type walFetchExit struct {
	code int
	err  error
}

func (e walFetchExit) Error() string { return e.err.Error() }

func runWALFetch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("wal-fetch", stderr)
	repoDir := fs.String("repo", "", "repository directory")
	idFile := fs.String("identity", "", "age identity file")
	cache := fs.String("prefetch", "", "prefetch cache directory: start a prefetcher that decrypts the next segments into it")
	boxKey := boxKeyFlag(fs)
	mappedFlag := fs.String("mapped-tablespaces", "", "LSN,...: CREATE TABLESPACE records to serve as no-ops (the restore made their directories where they were mapped)")
	if err := parse(fs, args, "repo", "identity"); err != nil {
		return err
	}
	mapped, err := parseLSNs(*mappedFlag)
	if err != nil {
		return walFetchExit{126, err}
	}
	if fs.NArg() != 2 {
		fmt.Fprintln(stderr, "usage: clinicctl wal-fetch --repo DIR --identity FILE [--prefetch DIR] [--mapped-tablespaces LSN,...] WALFILE DESTINATION")
		return usageError{}
	}
	name, dest := fs.Arg(0), fs.Arg(1)
	ids, err := archive.LoadIdentities(*idFile)
	if err != nil {
		return walFetchExit{126, err}
	}
	repo, err := openForFetch(*repoDir, *boxKey)
	if err != nil {
		return walFetchExit{126, err}
	}
	if _, _, ok := archive.ParseSegmentName(name, repo.Info.SegmentSize); ok && *cache != "" {
		// The prefetcher works on the next segments while this one is served.
		if start, err := restore.WantSegment(*cache, name); err != nil {
			fmt.Fprintln(stderr, "clinicctl wal-fetch: no prefetching:", err)
		} else if start {
			startPrefetcher(*repoDir, *idFile, *boxKey, *cache, *mappedFlag, stderr)
		}
	}
	err = repo.FetchWAL(name, dest, ids)
	if _, segNo, ok := archive.ParseSegmentName(name, repo.Info.SegmentSize); ok && err == nil {
		size := repo.Info.SegmentSize
		if err := restore.MapTablespaceRecords(dest, archive.LSN(segNo*size), size, mapped); err != nil {
			return walFetchExit{126, fmt.Errorf("%s: refusing to replay it: %w", name, err)}
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, archive.ErrNoSegment) && !repo.HasLaterSegment(name):
		return walFetchExit{1, err} // the end of the archive
	case errors.Is(err, archive.ErrNoSegment):
		return walFetchExit{126, fmt.Errorf("%s is missing but later WAL exists: refusing to end recovery early: %w", name, err)}
	}
	return walFetchExit{126, fmt.Errorf("%s is damaged; refusing to end recovery early: %w", name, err)}
}

// startPrefetcher starts 'clinicctl wal-prefetch' in its own session, so
// that it outlives this wal-fetch; it ends by itself.
func startPrefetcher(repoDir, idFile, boxKey, cache, mapped string, stderr io.Writer) {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "clinicctl wal-fetch: no prefetching:", err)
		return
	}
	cmd := exec.Command(exe, "wal-prefetch", "--repo", repoDir, "--identity", idFile, "--box-key", boxKey, "--dir", cache, "--mapped-tablespaces", mapped)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(stderr, "clinicctl wal-fetch: no prefetching:", err)
		return
	}
	cmd.Process.Release()
}

func runWALPrefetch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("wal-prefetch", stderr)
	repoDir := fs.String("repo", "", "repository directory")
	idFile := fs.String("identity", "", "age identity file")
	dir := fs.String("dir", "", "prefetch cache directory")
	boxKey := boxKeyFlag(fs)
	mappedFlag := fs.String("mapped-tablespaces", "", "LSN,...: CREATE TABLESPACE records to serve as no-ops")
	if err := parse(fs, args, "repo", "identity", "dir"); err != nil {
		return err
	}
	mapped, err := parseLSNs(*mappedFlag)
	if err != nil {
		return err
	}
	ids, err := archive.LoadIdentities(*idFile)
	if err != nil {
		return err
	}
	repo, err := openForFetch(*repoDir, *boxKey)
	if err != nil {
		return err
	}
	p := &restore.Prefetch{Repo: repo, Identities: ids, Dir: *dir, Mapped: mapped}
	return p.Run(ctx)
}

// parseLSNs reads a comma-separated list of WAL positions.
func parseLSNs(s string) ([]archive.LSN, error) {
	var out []archive.LSN
	for f := range strings.SplitSeq(s, ",") {
		if f == "" {
			continue
		}
		l, err := pglogrepl.ParseLSN(f)
		if err != nil {
			return nil, fmt.Errorf("--mapped-tablespaces: %q is not a WAL position", f)
		}
		out = append(out, l)
	}
	return out, nil
}

func init() {
	commands["wal-fetch"] = command{runWALFetch, "wal-fetch --repo DIR --identity FILE [--prefetch DIR] WALFILE DEST   (restore_command)"}
	commands["wal-prefetch"] = command{runWALPrefetch, "wal-prefetch --repo DIR --identity FILE --dir DIR   (started by wal-fetch)"}
}

// openForFetch opens the repository for PostgreSQL's restore_command: a
// signed repository needs --box-key (the restore that started recovery
// passes the key it checked against); nothing is recorded at first use.
func openForFetch(dir, boxKey string) (*archive.Repo, error) {
	if boxKey == "" {
		repo, err := archive.Open(dir)
		if err == nil && repo.Signed() {
			err = fmt.Errorf("wal-fetch: %s is signed; pass --box-key with the box's signing key", dir)
		}
		return repo, err
	}
	return openTrusted(dir, boxKey, io.Discard) // with a key, nothing is recorded or said
}
