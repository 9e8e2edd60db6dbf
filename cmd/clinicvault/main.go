// Command clinicvault is the offsite vault, the vault step of the data path:
// a service on the practice's tailnet that stores each box's encrypted
// repository, checks what arrives without the key, authorizes peers by their
// tailnet tags, audits refusals and reads, applies retention, and serves
// restores.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/clinicbox/clinicbox/appliance/vault"
	"github.com/clinicbox/clinicbox/appliance/vault/bucket"
	"github.com/clinicbox/clinicbox/appliance/vault/store"
	"github.com/clinicbox/clinicbox/drivers/tailnet"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("clinicvault", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "/etc/clinicvault.json", "settings file (JSON)")
	rehydrate := fs.String("rehydrate", "", "comma-separated namespaces to copy back from the s3 bucket before serving (a node replacing a lost one)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s, err := readSettingsFile(*cfgPath)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	node, err := joinTailnet(ctx, s, log)
	if err != nil {
		return err
	}
	defer node.Close()
	v, st, err := openVault(ctx, s, node, log)
	if err != nil {
		return err
	}
	defer v.Close()
	if err := rehydrateAll(ctx, v, st, *rehydrate, log); err != nil {
		return err
	}
	if st != nil {
		log.Info("offloading to object storage", "op", "offload", "endpoint", s.S3.Endpoint, "bucket", s.S3.Bucket, "every", s.offloadEvery())
		go offload(ctx, v, s.offloadEvery(), log)
	}
	return serve(ctx, s, v, node, log)
}

func readSettingsFile(path string) (*Settings, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("clinicvault: %w", err)
	}
	defer f.Close()
	return ReadSettings(f)
}

// joinTailnet brings the vault's node up with the settings' auth key.
func joinTailnet(ctx context.Context, s *Settings, log *slog.Logger) (*tailnet.Node, error) {
	authKey := ""
	if s.AuthKeyFile != "" {
		b, err := os.ReadFile(s.AuthKeyFile)
		if err != nil {
			return nil, fmt.Errorf("clinicvault: auth_key_file: %w", err)
		}
		authKey = strings.TrimSpace(string(b))
	}
	node, err := tailnet.New(tailnet.Config{Dir: s.StateDir, Hostname: s.Hostname, AuthKey: authKey, Tags: s.Tags, ControlURL: s.ControlURL}, log)
	if err != nil {
		return nil, err
	}
	if _, err := node.Up(ctx); err != nil {
		node.Close()
		return nil, err
	}
	return node, nil
}

// openVault opens the vault with its standby and its bucket, if the
// settings ask for them; the bucket's store is nil without one.
func openVault(ctx context.Context, s *Settings, node *tailnet.Node, log *slog.Logger) (*vault.Vault, *store.S3, error) {
	cfg := vault.Config{Dir: s.Dir, Rules: s.Rules, Retention: s.retention(), Limits: s.limits(),
		Node: s.Node, LeaseTTL: time.Duration(s.LeaseSeconds) * time.Second, AckStored: s.Ack == "stored",
		LocalKeep: time.Duration(s.LocalKeepDays) * 24 * time.Hour}
	if s.Standby != nil {
		sb, err := newStandby(s, log)
		if err != nil {
			return nil, nil, err
		}
		cfg.Standbys = map[string]*vault.Standby{s.Standby.Namespace: sb}
		go sb.Run(ctx)
	}
	var st *store.S3
	if s.S3 != nil {
		var err error
		if st, err = store.OpenS3(ctx, *s.S3); err != nil {
			return nil, nil, fmt.Errorf("clinicvault: %w", err)
		}
		cfg.Bucket = bucket.New(st)
	}
	v, err := vault.New(cfg, node, log)
	return v, st, err
}

// serve answers on the tailnet until ctx ends, pruning on the side.
func serve(ctx context.Context, s *Settings, v *vault.Vault, node *tailnet.Node, log *slog.Logger) error {
	ln, err := node.Listen(s.Listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: v, ReadHeaderTimeout: 30 * time.Second}
	go prune(ctx, v, log)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	log.Info("vault listening", "op", "vault", "node", s.Hostname, "addr", s.Listen, "dir", s.Dir)
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("clinicvault: %w", err)
	}
	return nil
}

// newStandby sets up the trusted standby the settings ask for.
func newStandby(s *Settings, log *slog.Logger) (*vault.Standby, error) {
	sb := s.Standby
	dir := sb.Dir
	if dir == "" {
		dir = filepath.Join(s.Dir, "standby", sb.Namespace)
	}
	prog := sb.Clinicctl
	if prog == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		prog = filepath.Join(filepath.Dir(exe), "clinicctl")
	}
	if _, err := os.Stat(prog); err != nil {
		return nil, fmt.Errorf("clinicvault: standby: %w; install clinicctl next to clinicvault or set standby.clinicctl", err)
	}
	return vault.NewStandby(vault.StandbyConfig{Repo: filepath.Join(s.Dir, "boxes", sb.Namespace, "repo"), IdentityFile: sb.IdentityFile, BoxKey: sb.BoxKey,
		Dir: dir, Port: sb.Port, FetchProgram: prog}, log)
}

// rehydrateAll copies the named namespaces back from the bucket.
func rehydrateAll(ctx context.Context, v *vault.Vault, st *store.S3, names string, log *slog.Logger) error {
	if names == "" {
		return nil
	}
	if st == nil {
		return errors.New("clinicvault: -rehydrate needs an s3 section in the settings")
	}
	for _, ns := range strings.Split(names, ",") {
		n, err := v.Rehydrate(ctx, st, strings.TrimSpace(ns))
		if err != nil {
			return fmt.Errorf("clinicvault: %w", err)
		}
		log.Info("rehydrated", "op", "rehydrate", "namespace", ns, "files", n)
	}
	return nil
}

// offload copies the namespaces into the bucket every interval, then
// evicts from the disk what is older than local_keep_days; a failed
// pass (the S3 server down) is logged once per change and retried: the
// directory keeps everything meanwhile and boxes keep shipping to it.
func offload(ctx context.Context, v *vault.Vault, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	failing := ""
	for {
		err := v.Offload(ctx)
		if err == nil {
			err = v.Evict(ctx) // what this pass stored may go from the disk
		}
		switch {
		case err != nil && err.Error() != failing:
			failing = err.Error()
			log.Error("offload", "op", "offload", "err", err)
		case err == nil && failing != "":
			failing = ""
			log.Info("offload caught up", "op", "offload")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// prune applies retention every hour, removes what the bucket holds of
// the directories takeovers set aside (vault.StaleGrace), and logs each
// removal with its reason.
func prune(ctx context.Context, v *vault.Vault, log *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		rs, err := v.Prune(time.Now())
		stale, serr := v.DropStale(ctx)
		rs, err = append(rs, stale...), errors.Join(err, serr)
		for _, r := range rs {
			log.Info("retention removed", "op", "retention", "namespace", r.Namespace, "what", r.What, "why", r.Why)
		}
		if err != nil {
			log.Error("retention", "op", "retention", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
