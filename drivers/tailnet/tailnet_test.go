package tailnet_test

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clinicbox/clinicbox/drivers/tailnet"
	"github.com/clinicbox/clinicbox/drivers/tailnet/tailnettest"
)

func TestListenDialWhoIs(t *testing.T) {
	tn := tailnettest.New(t)
	vault := tn.Node(t, "vault", "tag:vault")
	box := tn.Node(t, "box", "tag:clinicbox")
	laptop := tn.Node(t, "laptop")

	ln, err := vault.Listen(":8080")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := vault.WhoIs(r.Context(), r.RemoteAddr)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		io.WriteString(w, p.Node+" "+strings.Join(p.Tags, ",")+" "+p.StableID)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	for _, tc := range []struct {
		name string
		node *tailnet.Node
		host string
		tags []string
	}{
		{"tagged", box, "box.clinic.ts.net", []string{"tag:clinicbox"}},
		{"untagged", laptop, "laptop.clinic.ts.net", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://vault:8080/", nil)
			resp, err := tc.node.HTTPClient().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			f := strings.Split(string(body), " ")
			if len(f) != 3 {
				t.Fatalf("got body %q; want node, tags and stable ID", body)
			}
			if f[0] != tc.host {
				t.Errorf("got node %q; want %q", f[0], tc.host)
			}
			if got := strings.Join(tc.tags, ","); f[1] != got {
				t.Errorf("got tags %q; want %q", f[1], got)
			}
			if f[2] == "" {
				t.Error("got an empty stable ID")
			}

			addrs, err := tc.node.Up(ctx)
			if err != nil {
				t.Fatal(err)
			}
			p, err := vault.WhoIs(ctx, addrs[0]+":1234")
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(p.Tags, tc.tags) || p.HasTag("tag:clinicbox") != (tc.tags != nil) {
				t.Errorf("WhoIs: got tags %v; want %v", p.Tags, tc.tags)
			}
			names, err := tc.node.Names(ctx)
			if err != nil {
				t.Fatal(err)
			}
			short, _, _ := strings.Cut(tc.host, ".")
			for _, want := range append([]string{tc.host, short}, addrs...) {
				if !slices.Contains(names, want) {
					t.Errorf("Names: got %q; want it to hold %q", names, want)
				}
			}
		})
	}
}

func TestNewRefusesMissingSettings(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  tailnet.Config
		want string
	}{
		{"no hostname", tailnet.Config{Dir: t.TempDir()}, "no hostname"},
		{"no state directory", tailnet.Config{Hostname: "box"}, "no state directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tailnet.New(tc.cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v; want an error saying %q", err, tc.want)
			}
		})
	}
}

// A tailnet that cannot issue this node a certificate offers no TLS: the
// test control server names a certificate domain for the node, but the
// certificate has to come from Let's Encrypt through a DNS challenge the
// control server does not serve (self-hosted servers often do not
// either), so the caller keeps its pages on plain HTTP inside WireGuard.
func TestTLSConfigWithoutCertificates(t *testing.T) {
	tn := tailnettest.New(t)
	box := tn.Node(t, "box", "tag:clinicbox")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := box.Up(ctx); err != nil {
		t.Fatal(err)
	}
	cfg, name, ok, err := box.TLSConfig(ctx)
	if cfg != nil || ok {
		t.Errorf("got a configuration %v for %q, ok %v; want none", cfg, name, ok)
	}
	if err != nil && !strings.Contains(err.Error(), "certificate for "+name) {
		t.Errorf("got %v; want nil or an error naming the certificate for %q", err, name)
	}
}

// TestTCPBufferBoundsUnsentBytes writes to a peer that reads nothing, from
// a node with a bounded TCP buffer and from one with tsnet's: each holds
// its send buffer, and the peer what its receive window takes, which is
// the same for both. The bounded one holds its buffer's worth less; with
// tsnet's (1 MiB or more) the box's base backup upload held up to 100 MiB
// of 64 KiB wireguard-go buffers, one per packet in flight.
func TestTCPBufferBoundsUnsentBytes(t *testing.T) {
	const buf = 64 << 10
	tn := tailnettest.New(t)
	vault := tn.Node(t, "vault", "tag:vault")
	box := tn.NodeWith(t, tailnet.Config{Hostname: "box", Tags: []string{"tag:clinicbox"}, TCPBuffer: buf})
	laptop := tn.Node(t, "laptop")
	ln, err := vault.Listen(":9000")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never read
		}
	}()
	bounded, unbounded := stalledWrite(t, box), stalledWrite(t, laptop)
	t.Logf("bytes accepted before the write stalled: %d with a %d-byte buffer, %d with tsnet's", bounded, buf, unbounded)
	if bounded == 0 || bounded > unbounded-buf {
		t.Fatalf("got %d bytes accepted with a %d-byte buffer and %d with tsnet's; want at least the difference in buffers less", bounded, buf, unbounded)
	}
}

// stalledWrite writes to the vault's port 9000, which reads nothing, until
// the write stalls, and returns how much the connection took.
func stalledWrite(t *testing.T, n *tailnet.Node) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := n.Dial(ctx, "tcp", "vault:9000")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The write stops when the buffers are full; the deadline ends it.
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	w, err := c.Write(make([]byte, 64<<20))
	if err == nil {
		t.Fatalf("wrote all %d bytes to a peer that reads nothing", w)
	}
	return w
}
