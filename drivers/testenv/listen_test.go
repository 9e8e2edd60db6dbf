package testenv

import (
	"net"
	"os"
	"slices"
	"testing"
)

// A listener this process opened on port 0 is among its listening ports
// and a connection is not; once closed, the port is gone.
func TestListenPorts(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	client := c.LocalAddr().(*net.TCPAddr).Port
	ports, err := ListenPorts(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ports, port) || slices.Contains(ports, client) {
		t.Errorf("got %v; want %d listening and not the connection's %d", ports, port, client)
	}
	l.Close()
	if ports, err := ListenPorts(os.Getpid()); err != nil || slices.Contains(ports, port) {
		t.Errorf("after close: got %v, %v; want no %d", ports, err, port)
	}
	if _, err := ListenPorts(-1); err == nil {
		t.Errorf("pid -1: got no error")
	}
}
