package pgcluster

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"sync"
)

// Ask is what an Impostor asks a client for after its startup message.
type Ask int

const (
	AskCleartext Ask = iota // AuthenticationCleartextPassword
	AskMD5                  // AuthenticationMD5Password
	AskSCRAM                // SASL with SCRAM-SHA-256 only, no channel binding
	AskHuge                 // a message claiming HugeBody bytes
)

// HugeBody is the body length AskHuge claims: far beyond any message a
// PostgreSQL server sends, small enough not to hurt if a client does try.
const HugeBody = 64 << 20

// sslRequest is the code of the request to start TLS.
const sslRequest = 80877103

// Impostor is a host posing as a PostgreSQL server: it speaks just enough
// of the protocol to ask for a password, and records everything clients
// send, so a test can tell whether the password left.
type Impostor struct {
	Addr string // host:port to dial
	// TLS, when set, is the certificate offered on an SSLRequest; nil
	// answers 'N' (no TLS).
	TLS *tls.Certificate
	Ask Ask

	ln net.Listener
	wg sync.WaitGroup
	mu sync.Mutex
	// sent is what clients sent (inside TLS, decrypted), and after is the
	// part after their startup messages.
	sent, after bytes.Buffer
}

// Salt is the salt an Impostor sends with AskMD5.
const Salt = "salt"

// NewImpostor listens on host (an IP address) for clients.
func NewImpostor(host string, ask Ask, cert *tls.Certificate) (*Impostor, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, err
	}
	m := &Impostor{Addr: ln.Addr().String(), TLS: cert, Ask: ask, ln: ln}
	m.wg.Go(m.accept)
	return m, nil
}

func (m *Impostor) accept() {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			return
		}
		m.wg.Go(func() { m.serve(c) })
	}
}

// serve answers one connection: TLS as set, then the request, then it
// records what comes back (a password, or nothing before the client hangs
// up) and hangs up too.
func (m *Impostor) serve(c net.Conn) {
	defer c.Close()
	var conn net.Conn = c
	for {
		body, err := m.readStartup(conn)
		if err != nil {
			return
		}
		if len(body) < 4 || binary.BigEndian.Uint32(body) != sslRequest {
			break
		}
		if m.TLS == nil {
			conn.Write([]byte{'N'})
			continue
		}
		conn.Write([]byte{'S'})
		conn = tls.Server(conn, &tls.Config{Certificates: []tls.Certificate{*m.TLS}})
	}
	conn.Write(m.request())
	b := make([]byte, 4096)
	for {
		n, err := conn.Read(b)
		// A Terminate is the client's goodbye, not an answer: pgconn sends
		// one from a goroutine when it gives up on a connection, racing its
		// own close, so it may or may not arrive.
		m.record(bytes.TrimPrefix(b[:n], terminate), true)
		if n > 0 || err != nil {
			return
		}
	}
}

// terminate is the protocol's Terminate message.
var terminate = []byte{'X', 0, 0, 0, 4}

// readStartup reads an untyped message (SSLRequest, StartupMessage).
func (m *Impostor) readStartup(c net.Conn) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size < 4 || size > 10000 {
		return nil, io.ErrUnexpectedEOF
	}
	body := make([]byte, size-4)
	_, err := io.ReadFull(c, body)
	m.record(append(n[:], body...), false)
	return body, err
}

func (m *Impostor) request() []byte {
	msg := func(body ...byte) []byte {
		return append(binary.BigEndian.AppendUint32([]byte{'R'}, uint32(4+len(body))), body...)
	}
	switch m.Ask {
	case AskMD5:
		return msg(append([]byte{0, 0, 0, 5}, Salt...)...)
	case AskSCRAM:
		return msg(append([]byte{0, 0, 0, 10}, "SCRAM-SHA-256\x00\x00"...)...)
	case AskHuge:
		return binary.BigEndian.AppendUint32([]byte{'R'}, 4+HugeBody)
	}
	return msg(0, 0, 0, 3)
}

func (m *Impostor) record(b []byte, after bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent.Write(b)
	if after {
		m.after.Write(b)
	}
}

// Wait stops listening, waits until every client has hung up, and returns
// all they sent and the part after their startup messages.
func (m *Impostor) Wait() (sent, after []byte) {
	m.ln.Close()
	m.wg.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	return bytes.Clone(m.sent.Bytes()), bytes.Clone(m.after.Bytes())
}
