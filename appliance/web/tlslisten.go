package web

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"
)

// sniffTimeout is how long a new connection may take to send its first
// byte, which tells TLS from plain HTTP.
const sniffTimeout = 10 * time.Second

// TLSConfig is the LAN pages' TLS configuration with the box's
// certificate.
func (c *Cert) TLSConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{c.TLS}, MinVersion: tls.VersionTLS12}
}

// SplitTLS serves TLS and plain HTTP on one port: a connection whose
// first byte starts a TLS handshake is accepted as a *tls.Conn (so
// http.Server serves it as HTTPS and fills Request.TLS), any other as it
// is. The LAN handler answers plain HTTP with a redirect to HTTPS only,
// so that http://clinicbox:8080/ still leads people to the pages.
func SplitTLS(ln net.Listener, cfg *tls.Config) net.Listener {
	l := &splitListener{Listener: ln, cfg: cfg, ready: make(chan net.Conn), errs: make(chan error), closed: make(chan struct{})}
	go l.acceptLoop()
	return l
}

type splitListener struct {
	net.Listener
	cfg    *tls.Config
	ready  chan net.Conn // sniffed connections, waiting for Accept
	errs   chan error    // errors of the underlying Accept
	closed chan struct{}
	once   sync.Once
}

// acceptLoop accepts connections and sniffs each on its own goroutine,
// so that a client that sends nothing holds up nobody else.
func (l *splitListener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			select {
			case l.errs <- err:
			case <-l.closed:
				return
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		go l.sniff(c)
	}
}

func (l *splitListener) sniff(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(sniffTimeout))
	br := bufio.NewReader(c)
	first, err := br.Peek(1)
	if err != nil {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	var out net.Conn = &peekedConn{Conn: c, r: br}
	if first[0] == 0x16 { // a TLS handshake record
		out = tls.Server(out, l.cfg)
	}
	select {
	case l.ready <- out:
	case <-l.closed:
		c.Close()
	}
}

func (l *splitListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case err := <-l.errs:
		return nil, err
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *splitListener) Close() error {
	err := net.ErrClosed
	l.once.Do(func() {
		close(l.closed)
		err = l.Listener.Close()
	})
	return err
}

// peekedConn is a connection whose first bytes were read ahead.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(b []byte) (int, error) { return c.r.Read(b) }
