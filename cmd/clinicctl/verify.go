package main

import (
	"context"
	"fmt"
	"io"

	"github.com/clinicbox/clinicbox/appliance/archive"
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
	for _, p := range rep.Problems {
		fmt.Fprintln(stdout, "problem:", p)
	}
	fmt.Fprintf(stdout, "checked %d backups, %d WAL segments, %.1f MB stored (%.1f MB raw) in %.1fs\n",
		len(rep.Backups), rep.Segments, float64(rep.Stored)/1e6, float64(rep.Raw)/1e6, rep.Duration.Seconds())
	if !rep.OK() {
		return failedCheck{fmt.Sprintf("verify: %d problems found", len(rep.Problems))}
	}
	return nil
}
