package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/restore"
	"github.com/clinicbox/clinicbox/appliance/signer"
)

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("verify", stderr)
	repoDir := fs.String("repo", "", "repository directory")
	idFile := fs.String("identity", "", "age identity file (from clinicctl keygen)")
	id := fs.String("backup", "", "verify only this backup and the WAL it needs")
	boxKey := boxKeyFlag(fs)
	vf := addVaultFlags(fs)
	if err := parse(fs, args, "identity"); err != nil {
		return err
	}
	if (*repoDir == "") == (*vf.host == "") {
		fmt.Fprintln(stderr, "clinicctl verify: give --repo DIR (a drive) or --vault HOST (the offsite vault)")
		return usageError{}
	}
	if *vf.host != "" {
		dir, done, err := vf.mirrorForCheck(ctx, stderr)
		if err != nil {
			return err
		}
		defer done()
		*repoDir = dir
	}
	ids, err := archive.LoadIdentities(*idFile)
	if err != nil {
		return err
	}
	repo, err := openTrusted(*repoDir, *boxKey, stderr)
	if err != nil {
		return err
	}
	rep, err := repo.Verify(ctx, archive.VerifyOptions{Identities: ids, Backup: *id, Record: true})
	if err != nil {
		return err
	}
	for _, b := range rep.Backups {
		state := "ok"
		if !b.OK {
			state = "FAILED"
		}
		fmt.Fprintf(stdout, "backup %s: %s (%d files)\n", b.ID, state, b.Files)
	}
	for _, n := range rep.Notes {
		fmt.Fprintln(stdout, "note:", n)
	}
	problems := rep.Problems
	drills, err := checkDrillReports(repo, stdout)
	if err != nil {
		return err
	}
	problems = append(problems, drills...)
	for _, p := range problems {
		fmt.Fprintln(stdout, "problem:", p)
	}
	fmt.Fprintf(stdout, "checked %d backups, %d WAL segments, %.1f MB stored (%.1f MB raw) in %.1fs\n",
		len(rep.Backups), rep.Segments, float64(rep.Stored)/1e6, float64(rep.Raw)/1e6, rep.Duration.Seconds())
	if len(problems) > 0 {
		return failedCheck{fmt.Sprintf("verify: %d problems found", len(problems))}
	}
	return nil
}

// checkDrillReports checks the drill reports in the repository's drills/
// against the box's signing key, prints the box's, and returns the
// problems: a report edited or forged.
func checkDrillReports(repo *archive.Repo, stdout io.Writer) ([]archive.Problem, error) {
	key := repo.TrustedKey()
	if key == "" {
		return nil, nil // a repository of format 1: nothing is signed
	}
	trusted, err := signer.ParsePublic(key)
	if err != nil {
		return nil, err
	}
	rc, err := restore.CheckReports(filepath.Join(repo.Dir, "drills"), trusted)
	if err != nil {
		return nil, err
	}
	for _, r := range rc.Boxed {
		result := "passed"
		if !r.OK {
			result = "FAILED: " + r.Failure
		}
		fmt.Fprintf(stdout, "drill %s: %s (signed by the box)\n", r.Name(), result)
	}
	for _, o := range rc.Others {
		fmt.Fprintln(stdout, "note: drill report not signed by the box, not evidence of its drills:", o)
	}
	return rc.Problems, nil
}
