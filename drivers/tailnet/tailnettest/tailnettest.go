// Package tailnettest runs a whole tailnet inside a test process, the link
// of the vault step of the data path: the in-process coordination server
// (which grants the tags nodes advertise), a DERP relay and STUN server on
// loopback, and tailnet.Nodes joined to it.
package tailnettest

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"tailscale.com/net/netns"
	"tailscale.com/tailcfg"
	"tailscale.com/tstest/integration"
	"tailscale.com/tstest/integration/testcontrol"
	"tailscale.com/types/logger"

	"github.com/clinicbox/clinicbox/drivers/tailnet"
)

// Tailnet is a running in-process tailnet.
type Tailnet struct {
	// ControlURL is the coordination server's address for tailnet.Config.
	ControlURL string
	Control    *testcontrol.Server
}

// Tags every test tailnet knows. Any node may claim them at sign-up, as an
// admin's auth key for that tag would allow.
var Tags = []string{"tag:clinicbox", "tag:support", "tag:vault", "tag:other"}

// New starts a coordination server and a relay, stopped when t ends.
func New(t testing.TB) *Tailnet {
	t.Helper()
	// The tests run in the host's network namespace; tsnet's socket marks
	// need privileges the test may not have and do nothing useful here.
	netns.SetEnabled(false)
	t.Cleanup(func() { netns.SetEnabled(true) })
	derpMap := integration.RunDERPAndSTUN(t, logger.Discard, "127.0.0.1")
	owners := map[string][]string{}
	for _, tag := range Tags {
		owners[tag] = nil
	}
	c := &testcontrol.Server{
		DERPMap:   derpMap,
		TagOwners: owners,
		DNSConfig: &tailcfg.DNSConfig{Proxied: true},
		// The vault looks its peers up by name; names resolve through
		// MagicDNS in this domain.
		MagicDNSDomain: "clinic.ts.net",
		Logf:           logger.Discard,
	}
	c.HTTPTestServer = httptest.NewUnstartedServer(c)
	c.HTTPTestServer.Start()
	t.Cleanup(c.HTTPTestServer.Close)
	return &Tailnet{ControlURL: c.HTTPTestServer.URL, Control: c}
}

// Node starts a node with its state in memory, joined to the tailnet with
// the given tags, and waits until it is reachable. It is closed when t ends.
func (tn *Tailnet) Node(t testing.TB, hostname string, tags ...string) *tailnet.Node {
	t.Helper()
	return tn.NodeWith(t, tailnet.Config{Hostname: hostname, Tags: tags})
}

// NodeWith is Node with further settings from cfg (its hostname, tags and
// TCP buffer): the state is in memory and the node ephemeral all the same.
func (tn *Tailnet) NodeWith(t testing.TB, cfg tailnet.Config) *tailnet.Node {
	t.Helper()
	cfg.Memory, cfg.Dir, cfg.Ephemeral, cfg.ControlURL = true, t.TempDir(), true, tn.ControlURL
	n, err := tailnet.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := n.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if err := n.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}
