package main

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clinicbox/clinicbox/appliance/web"
	"github.com/clinicbox/clinicbox/drivers/tailnet"
)

// servers are the pages' HTTP servers, closed together at the end.
type servers struct {
	mu   sync.Mutex
	list []*http.Server
}

func (s *servers) serve(ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	s.list = append(s.list, srv)
	s.mu.Unlock()
	go srv.Serve(ln)
}

// shutdown stops every server, letting requests under way finish first.
func (s *servers) shutdown(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, srv := range s.list {
		srv.Shutdown(ctx)
	}
}

// serveLAN serves the pages on the practice's network at addr: HTTPS with
// the box's own certificate, and on the same port plain HTTP that is
// only redirected to HTTPS.
// It returns the address listened on: with port 0 (tests) the system
// chooses a free one, which no other process can take in between.
func (s *servers) serveLAN(pages *web.Server, addr string) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s.serve(web.SplitTLS(ln, pages.Cert().TLSConfig()), pages.LAN())
	return ln.Addr(), nil
}

// serveTailnet serves the pages to remote support on the tailnet.
//
// They are served over HTTPS with the tailnet's own certificate when the
// tailnet offers one (HTTPS and MagicDNS enabled in its admin page): on
// port 443, with port 80 redirecting there. When it offers none (a
// self-hosted coordination server without a certificate service, HTTPS
// not enabled, or the certificate cannot be fetched), the pages stay on
// plain HTTP on port 80, inside WireGuard: WireGuard encrypts every packet
// between the two devices and authenticates each by its node key, which
// is also what WhoIs names callers by, and no password or session cookie
// travels on the tailnet. A self-signed certificate there would add a
// warning to click through and nothing WireGuard does not already give.
func (s *servers) serveTailnet(ctx context.Context, node *tailnet.Node, pages *web.Server, log *slog.Logger) {
	ln, err := node.Listen(":80")
	if err != nil {
		log.Error("remote support pages are not served on the tailnet", "err", err)
		return
	}
	h := pages.Tailnet()
	var plain atomic.Pointer[http.Handler]
	plain.Store(&h)
	s.serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*plain.Load()).ServeHTTP(w, r) }))
	go func() {
		if _, err := node.Up(ctx); err != nil {
			return // startOffsite logs it
		}
		cfg, name, ok := tailnetCert(ctx, node.TLSConfig, log)
		if !ok {
			return
		}
		ln443, err := node.Listen(":443")
		if err != nil {
			log.Error("remote support pages are not served over HTTPS on the tailnet", "err", err)
			return
		}
		s.serve(tls.NewListener(ln443, cfg), h)
		var redirect http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://"+name+r.URL.RequestURI(), http.StatusMovedPermanently)
		})
		plain.Store(&redirect)
		log.Info("remote support pages over HTTPS with the tailnet's certificate", "name", name)
	}()
}

// Retries of the tailnet's certificate: soon after a failure, then less
// often, never slower than hourly, so that HTTPS turned on in the
// tailnet's admin page later, or a certificate service that was
// unreachable at start, reaches the pages without a restart.
const (
	certRetryFirst = time.Minute
	certRetryMax   = time.Hour
)

// tailnetCert asks the tailnet for its certificate until it has one, or
// ctx ends (ok false). The pages stay on plain HTTP inside WireGuard
// meanwhile; each change of answer is logged once.
func tailnetCert(ctx context.Context, fetch func(context.Context) (*tls.Config, string, bool, error), log *slog.Logger) (*tls.Config, string, bool) {
	wait, said := certRetryFirst, ""
	for {
		cfg, name, ok, err := fetch(ctx)
		if ok {
			return cfg, name, true
		}
		msg := "the tailnet offers no certificates: remote support pages are on plain HTTP inside WireGuard"
		if err != nil {
			msg = "the tailnet's certificate cannot be fetched: remote support pages stay on plain HTTP inside WireGuard"
		}
		if msg != said {
			log.Warn(msg, "err", err, "retry", wait)
			said = msg
		}
		select {
		case <-ctx.Done():
			return nil, "", false
		case <-time.After(wait):
		}
		wait = min(2*wait, certRetryMax)
	}
}
