package usb

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/pilebones/go-udev/netlink"
	"golang.org/x/sys/unix"
)

// Source yields raw kernel uevent messages, one per call. The kernel's netlink
// socket is the real one; tests replay recorded messages (usbtest.Source).
type Source interface {
	// Next blocks until the next message. It returns ErrOverflow when
	// messages were lost, and an error wrapping os.ErrClosed after Close.
	Next() ([]byte, error)
	// Close ends a blocked Next promptly.
	Close() error
}

// ErrOverflow reports that the kernel dropped uevents because the receive
// buffer was full (ENOBUFS); the device list must be read again from sysfs.
var ErrOverflow = errors.New("uevent receive buffer overflowed")

// DefaultRecvBuffer is the socket receive buffer asked for when none is given:
// room for thousands of events while a hub full of drives enumerates.
const DefaultRecvBuffer = 4 << 20

var _ Source = (*netlinkSource)(nil)

// netlinkSource reads kernel uevents from a NETLINK_KOBJECT_UEVENT socket.
//
// go-udev's UEventConn opens and binds the socket, but its Monitor is not
// used: it stops for good after ENOBUFS and leaves a goroutine blocked in
// recvfrom after Close. Here the socket is non-blocking and handed to Go's
// poller through os.File, so Close wakes a pending read at once, and ENOBUFS is
// reported as ErrOverflow while reading goes on.
type netlinkSource struct {
	f   *os.File
	rc  syscall.RawConn
	buf []byte
}

// openNetlink connects to the kernel's uevent multicast group with a receive
// buffer of rcvbuf bytes (0 means DefaultRecvBuffer).
func openNetlink(rcvbuf int) (*netlinkSource, error) {
	if rcvbuf <= 0 {
		rcvbuf = DefaultRecvBuffer
	}
	var c netlink.UEventConn
	if err := c.Connect(netlink.KernelEvent); err != nil {
		return nil, fmt.Errorf("usb: open uevent socket: %w", err)
	}
	fd := c.Fd
	unix.CloseOnExec(fd)
	// SO_RCVBUFFORCE passes net.core.rmem_max but needs CAP_NET_ADMIN.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf); err != nil {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf); err != nil {
			c.Close()
			return nil, fmt.Errorf("usb: set uevent receive buffer: %w", err)
		}
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		c.Close()
		return nil, fmt.Errorf("usb: set uevent socket non-blocking: %w", err)
	}
	f := os.NewFile(uintptr(fd), "uevent-netlink")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("usb: uevent socket: %w", err)
	}
	return &netlinkSource{f: f, rc: rc, buf: make([]byte, MaxMessage+1)}, nil
}

// Next returns the next message sent by the kernel. Messages from user space
// (a sender port other than 0) and truncated ones are skipped.
func (s *netlinkSource) Next() ([]byte, error) {
	for {
		var n, flags int
		var from unix.Sockaddr
		var rerr error
		err := s.rc.Read(func(fd uintptr) bool {
			n, _, flags, from, rerr = unix.Recvmsg(int(fd), s.buf, nil, 0)
			return rerr != unix.EAGAIN && rerr != unix.EINTR
		})
		switch {
		case err != nil:
			// Without deadlines the only failure here is a closed file;
			// its error is internal to package os, so name it as os.ErrClosed.
			return nil, fmt.Errorf("usb: read uevent: %w (%v)", os.ErrClosed, err)
		case rerr == unix.ENOBUFS:
			return nil, ErrOverflow
		case rerr != nil:
			return nil, fmt.Errorf("usb: read uevent: %w", rerr)
		}
		if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != 0 {
			continue
		}
		if flags&unix.MSG_TRUNC != 0 || n > MaxMessage {
			continue
		}
		return append([]byte(nil), s.buf[:n]...), nil
	}
}

// Close closes the socket; a Next blocked in another goroutine returns.
func (s *netlinkSource) Close() error { return s.f.Close() }

// OpenKernel opens the kernel's uevent socket directly: for recording raw
// events as test fixtures (clinicctl hwcheck --record).
func OpenKernel() (Source, error) { return openNetlink(0) }
