package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/clinicbox/clinicbox/appliance/archive"
	"github.com/clinicbox/clinicbox/appliance/restore"
	"github.com/clinicbox/clinicbox/appliance/vault"
	"github.com/clinicbox/clinicbox/drivers/tailnet"
)

// vaultFlags let restore and verify read from the offsite vault instead of a
// drive.
type vaultFlags struct {
	host, box, cache            *string
	stateDir, authKeyFile, ctrl *string
	tag                         *string
}

func addVaultFlags(fs *flag.FlagSet) *vaultFlags {
	return &vaultFlags{
		host:        fs.String("vault", "", "read the offsite vault at HOST[:PORT] on the tailnet instead of --repo"),
		box:         fs.String("box", "", "with --vault: the box's namespace (see the vault's status); empty means the only one"),
		cache:       fs.String("cache", "", "with --vault: local copy of the vault's repository that is read (restore: default PGDATA.vault; verify: a temporary directory)"),
		stateDir:    fs.String("tailnet-dir", "", "with --vault: join the tailnet with its own node, keeping its state here (default: use this machine's Tailscale)"),
		authKeyFile: fs.String("authkey-file", "", "with --tailnet-dir: file holding an auth key for the node"),
		ctrl:        fs.String("control-url", "", "with --tailnet-dir: coordination server (default Tailscale's)"),
		tag:         fs.String("tag", "tag:clinicrestore", "with --tailnet-dir: tag the node advertises (the vault grants reading by tag)"),
	}
}

// mirror copies the box's repository from the vault into the cache and
// returns the cache directory, which the restore then reads like a drive:
// recovery's wal-fetch runs against it and never waits on the network.
// With a target, only what a restore to it needs is fetched (chainOnly).
func (vf *vaultFlags) mirror(ctx context.Context, pgdata string, t *restore.Target, stderr io.Writer) (string, error) {
	hc := http.DefaultClient
	if *vf.stateDir != "" {
		node, err := vf.join(ctx)
		if err != nil {
			return "", err
		}
		defer node.Close()
		hc = node.HTTPClient()
	}
	cache := *vf.cache
	if cache == "" {
		cache = strings.TrimSuffix(pgdata, "/") + ".vault"
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", fmt.Errorf("restore: cache: %w", err)
	}
	start := time.Now()
	var want func(string) bool
	if t != nil {
		var err error
		if want, err = chainOnly(ctx, hc, vaultURL(*vf.host), *vf.box, cache, *t); err != nil {
			return "", err
		}
	}
	files, n, err := vault.MirrorWhere(ctx, hc, vaultURL(*vf.host), *vf.box, cache, want)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(stderr, "fetched %d files (%.1f MB) from the vault in %s into %s\n", files, float64(n)/1e6, time.Since(start).Round(time.Second), cache)
	return cache, nil
}

// chainOnly fetches the small files of the box's repository on the vault
// (metadata and WAL state) into cache, chooses the backup for t from them
// and the vault's listing, as the restore will, and returns which files the
// restore needs: that backup's chain and the WAL from its start, not the
// other backups the vault keeps.
func chainOnly(ctx context.Context, hc *http.Client, base, box, cache string, t restore.Target) (func(string) bool, error) {
	list, err := vault.List(ctx, hc, base, box)
	if err != nil {
		return nil, err
	}
	small := func(p string) bool { return !archive.Bulk(p) }
	if _, _, err := vault.MirrorWhere(ctx, hc, base, box, cache, small); err != nil {
		return nil, err
	}
	repo, err := archive.Open(cache)
	if err != nil {
		return nil, err
	}
	listed := make([]archive.Listed, len(list))
	for i, f := range list {
		listed[i] = archive.Listed{Path: f.Path, Size: f.Size}
	}
	repo.UseListing(listed)
	sum, err := repo.Summarize()
	if err != nil {
		return nil, err
	}
	b, _, err := restore.Choose(sum, t)
	if err != nil {
		return nil, err
	}
	chain, err := repo.Chain(b)
	if err != nil {
		return nil, err
	}
	return repo.NeededBy(chain), nil
}

// mirrorForCheck mirrors the vault's repository for a check: into --cache
// when given (kept, so the next check fetches only what is new), else into
// a temporary directory that done removes.
func (vf *vaultFlags) mirrorForCheck(ctx context.Context, stderr io.Writer) (dir string, done func(), err error) {
	done = func() {}
	if *vf.cache == "" {
		tmp, err := os.MkdirTemp("", "clinicctl-vault-")
		if err != nil {
			return "", done, fmt.Errorf("verify: %w", err)
		}
		*vf.cache, done = tmp, func() { os.RemoveAll(tmp) }
	}
	dir, err = vf.mirror(ctx, "", nil, stderr)
	if err != nil {
		done()
	}
	return dir, done, err
}

func (vf *vaultFlags) join(ctx context.Context) (*tailnet.Node, error) {
	key := ""
	if *vf.authKeyFile != "" {
		b, err := os.ReadFile(*vf.authKeyFile)
		if err != nil {
			return nil, fmt.Errorf("restore: --authkey-file: %w", err)
		}
		key = strings.TrimSpace(string(b))
	}
	host, _ := os.Hostname()
	node, err := tailnet.New(tailnet.Config{Dir: *vf.stateDir, Hostname: "clinicctl-restore-" + host, AuthKey: key,
		Tags: []string{*vf.tag}, Ephemeral: true, ControlURL: *vf.ctrl}, nil)
	if err != nil {
		return nil, err
	}
	if _, err := node.Up(ctx); err != nil {
		node.Close()
		return nil, err
	}
	return node, nil
}

// vaultURL turns HOST or HOST:PORT into the vault's base URL.
func vaultURL(host string) string {
	if strings.Contains(host, "://") {
		return host
	}
	if _, _, err := net.SplitHostPort(host); err != nil {
		host = net.JoinHostPort(host, "8443")
	}
	return "http://" + host
}
