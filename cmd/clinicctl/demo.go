package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"filippo.io/age"
	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/backup"
	"github.com/clinicbox/clinicbox/appliance/restore"
	"github.com/clinicbox/clinicbox/drivers/postgres"
	"github.com/clinicbox/clinicbox/drivers/postgres/pgtest"
)

// runDemo shows the backup engine on one machine: a throwaway PostgreSQL
// with a clinic-like workload, WAL streamed continuously into an encrypted
// repository, a verified base backup and a restore drill. Everything lives
// in --dir; the database is removed on Ctrl-C.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr)
	dir := fs.String("dir", "_work/demo", "directory for everything the demo writes")
	rate := fs.Float64("visits", 20, "clinic visits recorded per second")
	drillAfter := fs.Duration("drill-after", 20*time.Second, "run a restore drill after this long")
	duration := fs.Duration("duration", 0, "stop after this long (0: until Ctrl-C)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return err
	}
	os.Chmod(abs, 0o755) // the database runs as an unprivileged user
	say := func(format string, a ...any) { fmt.Fprintf(stdout, time.Now().Format("15:04:05 ")+format+"\n", a...) }

	say("starting a throwaway PostgreSQL with a clinic schema in %s", abs)
	c, err := pgtest.Start(ctx, pgtest.Options{Dir: abs, Fsync: true})
	if err != nil {
		return err
	}
	defer func() { c.Stop(); say("database stopped and removed; the repository stays in %s", abs) }()
	if err := c.ClinicInit(ctx, 500); err != nil {
		return err
	}
	id, keyFile, err := demoKey(abs)
	if err != nil {
		return err
	}
	repoDir := filepath.Join(abs, "drive-son")
	say("box key %s (identity in %s: never store it on a drive)", id.Recipient(), keyFile)

	workErr := make(chan error, 1)
	go func() { workErr <- c.ClinicWorkload(ctx, *rate, 500) }()
	var flushed atomic.Uint64
	streamErr := make(chan error, 1)
	go func() {
		streamErr <- backup.Stream(ctx, backup.StreamOptions{DB: c.URL(), Repo: repoDir, Slot: "clinicbox_son",
			Recipients: []string{id.Recipient().String()}, Log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
			OnFlush: func(_ uint32, l postgres.LSN) { flushed.Store(uint64(l)) }})
	}()
	say("taking a base backup (server-side zstd, encrypted with age) while visits are recorded")
	b, err := backup.Take(ctx, backup.Options{DB: c.URL(), Repo: repoDir, Recipients: []string{id.Recipient().String()}})
	if err != nil {
		return err
	}
	repo, err := archive.Open(repoDir)
	if err != nil {
		return err
	}
	rep, err := repo.Verify(ctx, archive.VerifyOptions{Identities: []age.Identity{id}, Backup: b.ID, Record: true})
	if err != nil {
		return err
	}
	say("backup %s verified: ok=%v, %d files checked against the manifest in %.1fs", b.ID, rep.OK(), rep.Backups[0].Files, rep.Duration.Seconds())
	say("streaming WAL continuously into %s; Ctrl-C to stop", repoDir)

	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	drill := time.After(*drillAfter)
	for {
		select {
		case <-ctx.Done():
			<-streamErr
			say("stopped; try: clinicctl list --repo %s", repoDir)
			return nil
		case err := <-workErr:
			return fmt.Errorf("demo: workload: %w", err)
		case err := <-streamErr:
			return fmt.Errorf("demo: stream: %w", err)
		case <-tick.C:
			server := demoServerLSN(ctx, c)
			say("server WAL at %s, stored on the drive up to %s (%d bytes behind)", server, postgres.LSN(flushed.Load()), max(0, int64(server)-int64(flushed.Load())))
		case <-drill:
			say("restore drill: restoring the latest state into a private PostgreSQL and checking it")
			checks, _ := restore.ParseChecks(strings.NewReader("count public.patients\ncount public.encounters\ncount public.notes\n"))
			d, err := restore.Drill(ctx, restore.DrillOptions{Repo: repo, Identities: []age.Identity{id}, IdentityFile: keyFile, Checks: checks, Save: true})
			if err != nil {
				return err
			}
			say("drill ok=%v: usable after %.1fs (RTO), data-loss window %.1fs (RPO); report in %s", d.OK, d.RTO, d.RPO, filepath.Join(repoDir, "drills"))
			if !d.OK {
				say("drill failure: %s", d.Failure)
			}
		}
	}
}

func demoKey(dir string) (*age.X25519Identity, string, error) {
	keyFile := filepath.Join(dir, "box-key.txt")
	if ids, err := archive.LoadIdentities(keyFile); err == nil {
		if x, ok := ids[0].(*age.X25519Identity); ok {
			return x, keyFile, nil
		}
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, "", err
	}
	return id, keyFile, os.WriteFile(keyFile, []byte(id.String()+"\n"), 0o600)
}

func demoServerLSN(ctx context.Context, c *pgtest.Cluster) postgres.LSN {
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		return 0
	}
	defer conn.Close(context.Background())
	var l postgres.LSN
	var s string
	if conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&s) == nil {
		l.Scan(s)
	}
	return l
}

func init() {
	commands["demo"] = command{runDemo, "demo [--dir DIR] [--visits N] [--duration D]   (a throwaway database backed up live)"}
}
