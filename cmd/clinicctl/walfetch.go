package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"

	"filippo.io/age"
	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/restore"
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
	mappedFlag, checkedFlag := guardFlags(fs)
	if err := parse(fs, args, "repo", "identity"); err != nil {
		return err
	}
	guard, err := restore.ParseGuard(*mappedFlag, *checkedFlag)
	if err != nil {
		return walFetchExit{126, err}
	}
	if fs.NArg() != 2 {
		fmt.Fprintln(stderr, "usage: clinicctl wal-fetch --repo DIR --identity FILE [--prefetch DIR] [--mapped-tablespaces LSN,...] [--checked-wal FROM,CHECKED,TO] WALFILE DESTINATION")
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
			startPrefetcher(*repoDir, *idFile, *boxKey, *cache, *mappedFlag, *checkedFlag, stderr)
		}
	}
	if err := repo.FetchWAL(name, dest, ids); err != nil {
		return fetchFailed(repo, name, err)
	}
	return guardServed(repo, guard, ids, name, dest)
}

// guardServed checks a segment just served against the restore's guard
// (no tablespace created outside the restore) and removes it when it is
// refused.
func guardServed(repo *archive.Repo, guard restore.Guard, ids []age.Identity, name, dest string) error {
	tli, segNo, ok := archive.ParseSegmentName(name, repo.Info.SegmentSize)
	if !ok {
		return nil // a history file
	}
	// restore_command runs in the data directory.
	pgdata, err := os.Getwd()
	if err == nil {
		err = guard.Serve(repo, ids, tli, segNo, dest, pgdata)
	}
	if err != nil {
		os.Remove(dest)
		return walFetchExit{126, fmt.Errorf("%s: refusing to replay it: %w", name, err)}
	}
	return nil
}

// fetchFailed tells PostgreSQL how a fetch that failed ends: the end of
// the archive ends recovery; a gap or damage aborts it.
func fetchFailed(repo *archive.Repo, name string, err error) error {
	switch {
	case errors.Is(err, archive.ErrNoSegment) && !repo.HasLaterSegment(name):
		return walFetchExit{1, err} // the end of the archive
	case errors.Is(err, archive.ErrNoSegment):
		return walFetchExit{126, fmt.Errorf("%s is missing but later WAL exists: refusing to end recovery early: %w", name, err)}
	}
	return walFetchExit{126, fmt.Errorf("%s is damaged; refusing to end recovery early: %w", name, err)}
}

// startPrefetcher starts 'clinicctl wal-prefetch' in its own session, so
// that it outlives this wal-fetch; it ends by itself.
func startPrefetcher(repoDir, idFile, boxKey, cache, mapped, checked string, stderr io.Writer) {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "clinicctl wal-fetch: no prefetching:", err)
		return
	}
	cmd := exec.Command(exe, "wal-prefetch", "--repo", repoDir, "--identity", idFile, "--box-key", boxKey, "--dir", cache, "--mapped-tablespaces", mapped, "--checked-wal", checked)
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
	mappedFlag, checkedFlag := guardFlags(fs)
	if err := parse(fs, args, "repo", "identity", "dir"); err != nil {
		return err
	}
	guard, err := restore.ParseGuard(*mappedFlag, *checkedFlag)
	if err != nil {
		return err
	}
	pgdata, err := os.Getwd() // started by wal-fetch, in the data directory
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
	p := &restore.Prefetch{Repo: repo, Identities: ids, Dir: *dir, Guard: guard, PGData: pgdata}
	return p.Run(ctx)
}

// guardFlags are the options restore.Guard.Flags writes.
func guardFlags(fs *flag.FlagSet) (mapped, checked *string) {
	mapped = fs.String("mapped-tablespaces", "", "LSN,...: CREATE TABLESPACE records to serve as no-ops (the restore made their directories where they were mapped)")
	checked = fs.String("checked-wal", "", "FROM,CHECKED,TO: the WAL the restore read for CREATE TABLESPACE records; later WAL is read as it is served")
	return mapped, checked
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
