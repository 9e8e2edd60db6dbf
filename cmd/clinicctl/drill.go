package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/clinicbox/clinicbox/appliance/restore"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgbin"
)

func runDrill(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("drill", stderr)
	repoDir := fs.String("repo", "", "repository directory")
	idFile := fs.String("identity", "", "age identity file")
	toTime := fs.String("to-time", "", "recovery target time (RFC 3339); default: latest")
	checkFile := fs.String("check-sql", "", "check file: 'count TABLE' lines and SQL statements (a false result fails)")
	reportDir := fs.String("report", "", "also write the report (JSON and HTML) into this directory")
	boxKey := boxKeyFlag(fs)
	pgBin := pgBinFlag(fs)
	if err := parse(fs, args, "repo", "identity"); err != nil {
		return err
	}
	t, err := parseTarget(*toTime, "", "", false)
	if err != nil {
		return err
	}
	opt, err := restoreOptions(*repoDir, *idFile, *boxKey, os.TempDir(), "", nil, stderr)
	if err != nil {
		return err
	}
	// The PostgreSQL of the repository's version, or nothing is touched.
	bin, err := restore.FindServer(ctx, opt.Repo, pgbin.Search{Dir: *pgBin})
	if err != nil {
		return err
	}
	if *reportDir != "" {
		// Made before the drill, so that a report directory that cannot be
		// made fails at once rather than after the drill.
		if err := os.MkdirAll(*reportDir, 0o755); err != nil {
			return fmt.Errorf("drill: --report: %w", err)
		}
	}
	k, err := loadSignKey("", stderr)
	if err != nil {
		return err
	}
	d := restore.DrillOptions{Repo: opt.Repo, Identities: opt.Identities, IdentityFile: opt.IdentityFile, Signer: k, Target: t, Save: true,
		Search: pgbin.Search{Dir: bin.Dir}}
	if d.Checks, err = readChecks(*checkFile); err != nil {
		return err
	}
	rep, err := restore.Drill(ctx, d)
	if err != nil {
		return err
	}
	if err := writeReport(*reportDir, rep); err != nil {
		return err
	}
	return printDrill(stdout, rep, opt.Repo.Dir)
}

// readChecks reads the practice's check file; none is no checks.
func readChecks(path string) (*restore.Checks, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return restore.ParseChecks(f)
}

// writeReport writes the drill's report (JSON and HTML) into dir, if any.
func writeReport(dir string, rep *restore.Report) error {
	if dir == "" {
		return nil
	}
	files, err := rep.Files()
	if err != nil {
		return err
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// printDrill prints the checks and the result; a failed drill is an error.
func printDrill(stdout io.Writer, rep *restore.Report, repoDir string) error {
	for _, c := range rep.Checks {
		state := "ok"
		if !c.OK {
			state = "FAILED"
		}
		fmt.Fprintf(stdout, "%-6s %s  %s\n", state, c.Name, c.Detail)
	}
	if !rep.OK {
		return failedCheck{"drill FAILED: " + rep.Failure}
	}
	fmt.Fprintf(stdout, "backup %s restored to %s with PostgreSQL %s: usable after %.1fs (RTO), data-loss window %.1fs (RPO)\n", rep.Backup, rep.Target, rep.Server, rep.RTO, rep.RPO)
	fmt.Fprintln(stdout, "drill passed; report saved in", filepath.Join(repoDir, "drills"))
	return nil
}

func init() {
	commands["drill"] = command{runDrill, "drill --repo DIR --identity FILE [--to-time T] [--check-sql FILE] [--report DIR] [--pg-bin DIR]"}
}
