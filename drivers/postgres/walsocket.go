package postgres

import (
	"crypto/tls"
	"net"
	"syscall"
	"unsafe"
)

// rcvLowat is how many bytes must wait on a streaming connection before the
// kernel wakes the reader (SO_RCVLOWAT). Reads themselves return whatever
// is there, so the tick every FlushInterval still picks up a trickle.
const rcvLowat = 256 << 10

// walSocket tunes the TCP socket under a WAL stream. Its methods do nothing
// on other connections (a Unix socket), where every message wakes the
// reader as before.
type walSocket struct {
	raw   syscall.RawConn // nil when not TCP
	lowat int             // the value set, 1 being the kernel's default
}

func newWALSocket(c net.Conn) *walSocket {
	if t, ok := c.(*tls.Conn); ok {
		c = t.NetConn()
	}
	s := &walSocket{lowat: 1}
	if t, ok := c.(*net.TCPConn); ok {
		if raw, err := t.SyscallConn(); err == nil {
			s.raw = raw
			s.set(rcvLowat)
		}
	}
	return s
}

func (s *walSocket) set(n int) {
	if s.raw == nil || n == s.lowat {
		return
	}
	s.raw.Control(func(fd uintptr) {
		if syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT, n) == nil {
			s.lowat = n
		}
	})
}

// expect lowers the threshold when no more than n bytes are still to come
// (a stream stopping at a position), so the last of them is not left
// waiting for a tick.
func (s *walSocket) expect(n int) {
	s.set(max(1, min(n, rcvLowat)))
}

// reset restores the kernel's default, for the queries that follow a
// stream on the same connection.
func (s *walSocket) reset() { s.set(1) }

// idle reports whether no received bytes wait in the socket. It says yes
// when it cannot tell.
func (s *walSocket) idle() bool {
	if s.raw == nil {
		return true
	}
	n := 0
	s.raw.Control(func(fd uintptr) {
		// TIOCINQ is SIOCINQ: the bytes queued for reading on a socket.
		syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&n)))
	})
	return n == 0
}
