package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/clinicbox/clinicbox/appliance"
	"github.com/clinicbox/clinicbox/appliance/offsite"
	"github.com/clinicbox/clinicbox/appliance/signer"
	"github.com/clinicbox/clinicbox/appliance/vault"
	"github.com/clinicbox/clinicbox/drivers/tailnet"
)

// loopbackBox identifies every caller of the demo's vault as the demo box.
// On a real vault this is the tailnet's WhoIs: the demo has no tailnet (no
// coordination server on a laptop), so it serves the vault on loopback
// only and says so.
type loopbackBox struct{}

func (loopbackBox) WhoIs(ctx context.Context, addr string) (tailnet.Peer, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || !net.ParseIP(host).IsLoopback() {
		return tailnet.Peer{}, fmt.Errorf("demo vault: %s is not on this machine", addr)
	}
	return tailnet.Peer{StableID: "demo-box", Node: "clinicbox-demo", Tags: []string{"tag:clinicbox"}, Addr: addr}, nil
}

// startDemoVault serves a vault on loopback and returns a shipper for the
// box that sends it WAL as it arrives and base backups when due.
func startDemoVault(dir, dbURL string, recipients []string, sign *signer.Key, now func() time.Time, log *slog.Logger) (*offsite.Shipper, func(), string, error) {
	v, err := vault.New(vault.Config{Dir: dir}, loopbackBox{}, log)
	if err != nil {
		return nil, nil, "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		v.Close()
		return nil, nil, "", err
	}
	srv := &http.Server{Handler: v, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	url := "http://" + ln.Addr().String()
	ship, err := offsite.New(offsite.Config{Name: "demo", DB: dbURL, Recipients: recipients, Signer: sign, VaultURL: url, Now: now}, log)
	if err != nil {
		srv.Close()
		v.Close()
		return nil, nil, "", err
	}
	return ship, func() { srv.Close(); v.Close() }, url, nil
}

var _ appliance.Offsite = (*offsite.Shipper)(nil)
