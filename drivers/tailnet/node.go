// Package tailnet is clinicbox's node on the practice's tailnet, the link of
// the vault step of the data path: a tsnet server with its state on
// persistent storage, log upload turned off, and listen, dial and
// peer-identity helpers for the offsite link and the vault.
package tailnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"tailscale.com/envknob"
	"tailscale.com/ipn/store/mem"
	"tailscale.com/tsnet"
)

// Config describes a node.
type Config struct {
	// Dir holds the node's keys and state (on the box, under /perm). It is
	// required unless Memory is set.
	Dir string
	// Memory keeps the node's state in memory only (tests, throwaway
	// restore clients): the node is new each time it starts.
	Memory bool
	// Hostname is the node's name on the tailnet.
	Hostname string
	// AuthKey joins the tailnet the first time; empty means the state in
	// Dir must already hold a login.
	AuthKey string
	// Tags are the ACL tags the node advertises (e.g. "tag:clinicbox").
	Tags []string
	// Ephemeral nodes are removed from the tailnet when they go offline.
	Ephemeral bool
	// ControlURL is the coordination server; empty means Tailscale's.
	ControlURL string
	// TCPBuffer bounds the send and receive buffer of each of the node's
	// TCP connections, in bytes; zero means tsnet's (1 MiB at first,
	// growing to 6 MiB sending and 8 MiB receiving). Every packet in
	// flight holds one of wireguard-go's 64 KiB buffers until it is
	// sent, so a connection that sends faster than the link carries
	// holds about fifty times its unacknowledged bytes (see
	// LowMemoryTCPBuffer).
	TCPBuffer int
}

// LowMemoryTCPBuffer is the box's TCPBuffer: enough in flight for a
// 10 Mbit/s uplink at 100 ms round trip, while the packets in flight
// hold at most about 7 MiB of wireguard-go's buffers. With tsnet's
// default a base backup upload held up to 100 MiB of them.
const LowMemoryTCPBuffer = 128 << 10

// Node is a running tailnet node.
type Node struct {
	srv    *tsnet.Server
	log    *slog.Logger
	tmpDir string // a memory node's scratch directory, removed by Close
	// tcpBuffer is Config.TCPBuffer.
	tcpBuffer int

	closeOnce sync.Once
	closeErr  error
}

// New configures a node; Up connects it. Log upload to Tailscale is turned
// off for the whole process: a medical appliance sends no logs to third
// parties. tsnet's own logs go to log at debug level.
func New(cfg Config, log *slog.Logger) (*Node, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Hostname == "" {
		return nil, errors.New("tailnet: no hostname; set the node's name on the tailnet")
	}
	if cfg.Dir == "" && !cfg.Memory {
		return nil, errors.New("tailnet: no state directory; set Dir to a directory on persistent storage (under /perm on the box)")
	}
	envknob.SetNoLogsNoSupport()
	s := &tsnet.Server{
		Dir:           cfg.Dir,
		Hostname:      cfg.Hostname,
		AuthKey:       cfg.AuthKey,
		AdvertiseTags: cfg.Tags,
		Ephemeral:     cfg.Ephemeral,
		ControlURL:    cfg.ControlURL,
		Logf:          func(format string, args ...any) { log.Debug(fmt.Sprintf(format, args...), "op", "tailnet") },
		UserLogf:      func(format string, args ...any) { log.Info(fmt.Sprintf(format, args...), "op", "tailnet") },
	}
	if cfg.Memory {
		s.Store = new(mem.Store)
		if s.Dir == "" {
			dir, err := os.MkdirTemp("", "clinicbox-tailnet-")
			if err != nil {
				return nil, fmt.Errorf("tailnet: %w", err)
			}
			s.Dir = dir
		}
	} else if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("tailnet: state directory: %w", err)
	}
	n := &Node{srv: s, log: log, tcpBuffer: cfg.TCPBuffer}
	if cfg.Memory && cfg.Dir == "" {
		n.tmpDir = s.Dir
	}
	return n, nil
}

// Up connects to the tailnet and waits until the node is running. It
// returns the node's tailnet addresses.
func (n *Node) Up(ctx context.Context) ([]string, error) {
	if err := n.start(); err != nil {
		return nil, err
	}
	st, err := n.srv.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("tailnet: up %s: %w", n.srv.Hostname, err)
	}
	var out []string
	for _, ip := range st.TailscaleIPs {
		out = append(out, ip.String())
	}
	return out, nil
}

// Names returns what the node is called on the tailnet: its MagicDNS
// name (box.clinic.ts.net), that name's first label and the configured
// hostname (what MagicDNS answers to alone), and its tailnet addresses.
// Before the node is up it has only its hostname.
func (n *Node) Names(ctx context.Context) ([]string, error) {
	out := []string{n.srv.Hostname}
	lc, err := n.srv.LocalClient()
	if err != nil {
		return out, fmt.Errorf("tailnet: names: %w", err)
	}
	st, err := lc.StatusWithoutPeers(ctx)
	if err != nil {
		return out, fmt.Errorf("tailnet: names: %w", err)
	}
	if st.Self != nil {
		if name := strings.TrimSuffix(st.Self.DNSName, "."); name != "" {
			short, _, _ := strings.Cut(name, ".")
			out = append(out, name, short)
		}
	}
	for _, ip := range st.TailscaleIPs {
		out = append(out, ip.String())
	}
	return out, nil
}

// Listen listens for TCP connections from the tailnet on addr (":8443").
func (n *Node) Listen(addr string) (net.Listener, error) {
	ln, err := n.srv.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("tailnet: listen %s: %w", addr, err)
	}
	return ln, nil
}

// Dial connects to addr ("vault:8443" or "100.64.0.2:8443") over the tailnet.
func (n *Node) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := n.srv.Dial(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("tailnet: dial %s: %w", addr, err)
	}
	return c, nil
}

// HTTPClient returns a client whose connections go over the tailnet.
func (n *Node) HTTPClient() *http.Client { return n.srv.HTTPClient() }

// Close disconnects the node. An ephemeral node leaves the tailnet.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.closeErr = n.srv.Close()
		if n.tmpDir != "" {
			os.RemoveAll(n.tmpDir)
		}
	})
	return n.closeErr
}

// Ready waits until the node has a home relay (DERP) connection. Until
// then, the first packets from a peer may be dropped by the relay; waiting
// makes the first connection after start-up prompt.
func (n *Node) Ready(ctx context.Context) error {
	h := n.srv.Sys().HealthTracker.Get()
	ms := n.srv.Sys().MagicSock.Get()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if r := ms.GetLastNetcheckReport(ctx); r != nil && r.PreferredDERP != 0 &&
			!h.GetDERPRegionReceivedTime(r.PreferredDERP).IsZero() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("tailnet: %s: no relay connection: %w", n.srv.Hostname, ctx.Err())
		case <-t.C:
		}
	}
}
