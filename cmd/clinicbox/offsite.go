package main

import (
	"context"
	"log/slog"
	"path/filepath"

	"filippo.io/age"

	"github.com/clinicbox/clinicbox/appliance"
	"github.com/clinicbox/clinicbox/appliance/offsite"
	"github.com/clinicbox/clinicbox/drivers/tailnet"
)

// startOffsite joins the tailnet and sets up shipping to the vault when the
// settings name one. The node's state lives under the state directory, so
// the auth key is needed only on the first start.
func startOffsite(ctx context.Context, set *appliance.Settings, stateDir string, cfg *appliance.Config, log *slog.Logger) (*tailnet.Node, error) {
	o, ok, err := set.OffsiteSettings()
	if err != nil || !ok {
		return nil, err
	}
	key, err := o.AuthKey()
	if err != nil {
		return nil, err
	}
	node, err := tailnet.New(tailnet.Config{Dir: filepath.Join(stateDir, "tailnet"), Hostname: o.Hostname, AuthKey: key,
		Tags: []string{"tag:clinicbox"}, ControlURL: o.ControlURL, TCPBuffer: tailnet.LowMemoryTCPBuffer}, log)
	if err != nil {
		return nil, err
	}
	go func() {
		if _, err := node.Up(ctx); err != nil && ctx.Err() == nil {
			log.Error("the tailnet is not reachable; WAL waits in the server's slot", "err", err)
		}
	}()
	boxKey, err := appliance.LoadKey(filepath.Join(stateDir, "box.key"))
	if err != nil {
		node.Close()
		return nil, err
	}
	dbURL, err := set.DatabaseURL()
	if err != nil {
		node.Close()
		return nil, err
	}
	sc := o.ShipperConfig(dbURL, append([]string{boxKey.Recipient()}, set.Recipients...))
	sc.Signer = boxKey.Signer
	// Incremental base backups are built on /perm and uploaded from there,
	// so an eject or a restart never throws away upload progress.
	sc.Spool = filepath.Join(stateDir, "offsite-spool")
	sc.Identities = []age.Identity{boxKey.Identity}
	sc.Client = node.HTTPClient()
	sc.Now = cfg.Now
	ship, err := offsite.New(sc, log)
	if err != nil {
		node.Close()
		return nil, err
	}
	cfg.Offsite = ship
	return node, nil
}
